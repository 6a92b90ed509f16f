package fastpath

import (
	"strings"
	"testing"
)

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("panic %v, want one saying %q", r, want)
		}
	}()
	f()
}

func TestHandOver(t *testing.T) {
	canonical := func([]byte) error { return nil }
	Set(900, Paths[int]{Canonical: canonical})
	mustPanic(t, "set twice", func() { Set(900, Paths[int]{}) })
	if p, ok := Take[int](900); !ok || p.Canonical == nil {
		t.Fatalf("Take = %v, %v", p, ok)
	}
	if _, ok := Take[int](900); ok {
		t.Error("paths taken twice")
	}
	mustPanic(t, "after the type was registered", func() { Set(900, Paths[int]{}) })
	if _, ok := Take[int](901); ok {
		t.Error("paths of a type nobody set")
	}

	Set(902, Paths[string]{})
	if got := Pending(); len(got) != 1 || got[0] != 902 {
		t.Errorf("Pending = %v, want [902]", got)
	}
	mustPanic(t, "want", func() { Take[int](902) })
	if got := Pending(); len(got) != 0 {
		t.Errorf("Pending = %v after Take", got)
	}
}
