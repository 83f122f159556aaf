package bench

import "context"

func (b *Bench) dispatcher(ctx context.Context) ([]Row, error)   { return nil, nil }
func (b *Bench) slowProvider(ctx context.Context) ([]Row, error) { return nil, nil }
func (b *Bench) accuracy(ctx context.Context) ([]Row, error)     { return nil, nil }
func (b *Bench) retry(ctx context.Context) ([]Row, error)        { return nil, nil }
func (b *Bench) endToEnd(ctx context.Context) ([]Row, error)     { return nil, nil }
func (b *Bench) dedupe(ctx context.Context) ([]Row, error)       { return nil, nil }
