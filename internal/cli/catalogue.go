package cli

// The caveat catalogue packages register their caveat types on import, so
// that JSON input and output know them by name. flyio imports resset.
import (
	_ "github.com/caveatdev/caveat/auth"
	_ "github.com/caveatdev/caveat/flyio"
)
