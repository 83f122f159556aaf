package insecure

import "testing"

func TestLoopbackAndPlainHTTP(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "sim.localhost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true, "[::1]": true,
		"": false, "10.0.0.1": false, "example.com": false, "localhost.example.com": false, "0.0.0.0": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", host, got, want)
		}
	}
	for raw, want := range map[string]bool{
		"http://api.example.com": true, "HTTP://10.0.0.5:8090/x": true, "http://127.0.0.1:8090": false, "http://localhost": false,
		"https://api.example.com": false, "http://[::1]:80": false, "::not a url": false,
	} {
		if got := PlainHTTP(raw); got != want {
			t.Errorf("PlainHTTP(%q) = %v, want %v", raw, got, want)
		}
	}
	if !LoopbackAddrs([]string{"127.0.0.1:9092", "localhost:9093"}) || LoopbackAddrs([]string{"127.0.0.1:9092", "kafka:9092"}) || LoopbackAddrs(nil) {
		t.Error("LoopbackAddrs")
	}
}
