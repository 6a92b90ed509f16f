package sqlrules

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestPending(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0002_b.sql": {Data: []byte("B")},
		"migrations/0001_a.sql": {Data: []byte("A")},
		"migrations/notes.txt":  {Data: []byte("not a migration")},
	}
	for _, tc := range []struct {
		applied []string
		want    []Migration
	}{
		{nil, []Migration{{"0001_a", "A"}, {"0002_b", "B"}}},
		{[]string{"0001_a"}, []Migration{{"0002_b", "B"}}},
		{[]string{"0002_b", "0001_a"}, nil},
	} {
		got, err := Pending(fsys, tc.applied)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Pending(%q) = %v, %v; want %v", tc.applied, got, err, tc.want)
		}
	}
	if _, err := Pending(fsys, []string{"0001_a", "0003_from_the_future"}); err == nil || !strings.Contains(err.Error(), "0003_from_the_future") {
		t.Errorf("a version this binary lacks: err = %v, want one naming it", err)
	}
}
