package tp

import "testing"

func TestInitURL(t *testing.T) {
	for loc, want := range map[string]string{
		"https://auth.example":          "https://auth.example/.well-known/macfly/3p",
		"https://auth.example/":         "https://auth.example/.well-known/macfly/3p",
		"https://api.example/aaa/v1":    "https://api.example/aaa/v1/.well-known/macfly/3p",
		"https://api.example/aaa/v1/":   "https://api.example/aaa/v1/.well-known/macfly/3p",
		"http://127.0.0.1:8080/aaa/v1/": "http://127.0.0.1:8080/aaa/v1/.well-known/macfly/3p",
	} {
		if got := InitURL(loc); got != want {
			t.Errorf("InitURL(%q) = %q, want %q", loc, got, want)
		}
	}
}

func TestSecrets(t *testing.T) {
	s := newSecret()
	if !validSecret(s) || s == newSecret() {
		t.Fatalf("secret %q", s)
	}
	for _, bad := range []string{"", s[:31], s + "0", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdeg", "../../../../../../../../../../.."} {
		if validSecret(bad) {
			t.Errorf("validSecret(%q)", bad)
		}
	}
	// A user secret and a poll secret never share a FlowID: the user URL
	// must not work as a poll URL.
	if secretID(labelPoll, s) == secretID(labelUser, s) {
		t.Fatal("poll and user secrets hash alike")
	}
	if secretID(labelPoll, s) != secretID(labelPoll, s) || secretID(labelPoll, s) == secretID(labelPoll, newSecret()) {
		t.Fatal("secretID is not a function of the secret")
	}
}
