package provider

// ClassifyTransport classifies an error that came with no provider
// response. Placeholder until the classification table lands.
func ClassifyTransport(err error) *Error {
	return &Error{Class: Retryable, Code: "network", Err: err}
}
