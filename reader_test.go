package caveat

import "github.com/caveatdev/caveat/internal/msgpack"

func readerOf(b []byte) msgpack.Reader { return msgpack.NewReader(b) }
