package msgpack

// The Append functions write the canonical encoding of spec §2.2 onto b and
// return the extended slice.

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends a boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendUint appends v in its shortest unsigned form.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xcf, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendInt appends v: unsigned codes when v ≥ 0, else the shortest signed code.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= -128:
		return append(b, 0xd0, byte(v))
	case v >= -32768:
		return append(b, 0xd1, byte(v>>8), byte(v))
	case v >= -2147483648:
		return append(b, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xd3, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendLen(b []byte, n int, fix, fixMax, c8, c16, c32 byte) []byte {
	switch {
	case fix != 0 && n <= int(fixMax):
		return append(b, fix|byte(n))
	case c8 != 0 && n <= 0xff:
		return append(b, c8, byte(n))
	case n <= 0xffff:
		return append(b, c16, byte(n>>8), byte(n))
	}
	return append(b, c32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendStr appends a text string.
func AppendStr(b []byte, s string) []byte {
	b = appendLen(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	return append(b, s...)
}

// AppendStrBytes appends a text string given as bytes.
func AppendStrBytes(b []byte, s []byte) []byte {
	b = appendLen(b, len(s), 0xa0, 31, 0xd9, 0xda, 0xdb)
	return append(b, s...)
}

// AppendBin appends a byte string; a nil slice is written as nil (0xc0), an
// empty one as an empty byte string (c4 00). The two are different values.
func AppendBin(b []byte, v []byte) []byte {
	if v == nil {
		return AppendNil(b)
	}
	b = appendLen(b, len(v), 0, 0, 0xc4, 0xc5, 0xc6)
	return append(b, v...)
}

// AppendArrayHeader appends the header of an n-element array.
func AppendArrayHeader(b []byte, n int) []byte {
	return appendLen(b, n, 0x90, 15, 0, 0xdc, 0xdd)
}

// AppendMapHeader appends the header of an n-entry map.
func AppendMapHeader(b []byte, n int) []byte {
	return appendLen(b, n, 0x80, 15, 0, 0xde, 0xdf)
}
