package postgres

import "testing"

func TestNumbered(t *testing.T) {
	for _, tc := range []struct {
		query string
		args  int
		want  string
	}{
		{"SELECT 1 FROM t WHERE a = ? AND b > ?", 2, "SELECT 1 FROM t WHERE a = $1 AND b > $2"},
		{"UPDATE t SET x = GREATEST(coalesce(x, ?1), ?1) WHERE id = ?2", 2, "UPDATE t SET x = GREATEST(coalesce(x, $1), $1) WHERE id = $2"},
		{"SELECT $1 -- ?", 0, "SELECT $1 -- ?"}, // no arguments: left alone
		{"SELECT 'é' || ?", 1, "SELECT 'é' || $1"},
	} {
		if got := numbered(tc.query, tc.args); got != tc.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tc.query, tc.args, got, tc.want)
		}
	}
}
