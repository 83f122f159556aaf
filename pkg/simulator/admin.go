package simulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

func (s *Simulator) handleLedger(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("notification_id"); id != "" {
		writeJSON(w, http.StatusOK, s.ledger.lookup(id))
		return
	}
	entries, _ := strconv.ParseBool(r.URL.Query().Get("entries"))
	writeJSON(w, http.StatusOK, s.ledger.snapshot(entries))
}

func (s *Simulator) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
}

// handleConfig serves the Behavior; POST merges the fields present in a
// partial JSON object into the current one.
func (s *Simulator) handleConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = s.updateBehavior(func(b *Behavior) error { return decodeStrict(raw, b) })
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, s.Behavior())
}

type outageState struct {
	On   bool       `json:"on"`
	Mode OutageMode `json:"mode,omitempty"`
}

func (s *Simulator) handleOutage(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = s.updateBehavior(func(b *Behavior) error {
				var o outageState
				if err := decodeStrict(raw, &o); err != nil {
					return err
				}
				b.Outage = o.On
				if o.Mode != "" {
					b.OutageMode = o.Mode
				}
				return nil
			})
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
	}
	b := s.Behavior()
	writeJSON(w, http.StatusOK, outageState{On: b.Outage, Mode: b.OutageMode})
}

// decodeStrict decodes one JSON object, refusing unknown fields so a typo
// in an admin call is an error rather than a silent no-op.
func decodeStrict(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
