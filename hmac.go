package caveat

// HMAC-SHA256 for the caveat chain and SHA-256 for binding ids (spec §4).
//
// A verification computes a dozen HMACs, each with a fresh key (the previous
// tail), over short messages, so what costs is not the SHA-256 compressions
// (four for most caveats) but what surrounds them. crypto/hmac allocates its
// state for every key, so the HMAC is written out here (RFC 2104 exactly;
// TestHMACMatchesStdlib compares it with crypto/hmac); and instead of
// writing the pad, the message and the padding to a digest in turns and
// calling Sum, each of the two hashes lays out its whole input, padded as
// SHA-256 pads it, in one stack buffer: one Write then runs the compression
// over every block at once, and the digest is the state it leaves, read
// with AppendBinary (see paddedSum). That takes a quarter off each HMAC
// (BENCHMARKS.md).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
)

// finalizationKey is the HMAC key that finalises a proof's tail (spec §4.6).
var finalizationKey = []byte("proof-signature-finalization")

// paddedMax bounds the input that hmacSHA256 pads on the stack: a pad
// block and caveats of up to 439 bytes, which covers ordinary tokens.
// Longer messages take the portable path.
const paddedMax = 512

// sha256StateMagic is how crypto/sha256's AppendBinary starts: a 4-byte
// magic number, then the eight state words big-endian.
const sha256StateMagic = "sha\x03"

// paddedOK is set at init when paddedSum gives SHA-256 on this build (it
// needs crypto/sha256's digest to be the standard one, with AppendBinary)
// without allocating (not with the race detector: hmac_race.go).
// Otherwise every hash takes the portable path.
var paddedOK bool

func init() {
	paddedOK = !raceBuild
	paddedOK = paddedOK && checkPadded()
	if paddedOK {
		finInner, finOuter = padState(0x3636363636363636), padState(0x5c5c5c5c5c5c5c5c)
		var tail [tailSize]byte
		if finalize(tail) != hmacSHA256(finalizationKey, tail[:], nil) {
			finInner, finOuter = nil, nil
		}
	}
}

// finInner and finOuter are the states of SHA-256 after the inner and the
// outer pad block of finalizationKey, as AppendBinary encodes them, so that
// finalizing a proof's tail resumes from them: one compression per hash
// instead of two. Nil unless paddedOK and they check out.
var finInner, finOuter []byte

// padState returns the encoded state of SHA-256 after finalizationKey XOR
// the pad word, as one block.
func padState(padWord uint64) []byte {
	var k, block [hmacBlockSize]byte
	copy(k[:], finalizationKey)
	xorPad(block[:], &k, padWord)
	d := sha256.New()
	d.Write(block[:])
	st, _ := d.(encoding.BinaryAppender).AppendBinary(nil)
	return st
}

// hmacSHA256 returns HMAC-SHA256(key, msg ‖ msg2) without allocating.
func hmacSHA256(key, msg, msg2 []byte) [tailSize]byte {
	if counting.Load() {
		opCount.hmac.Add(1)
	}
	var k [hmacBlockSize]byte
	if len(key) > hmacBlockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	n := hmacBlockSize + len(msg) + len(msg2)
	switch {
	case !paddedOK || paddedLen(n) > paddedMax:
		return hmacPortable(&k, msg, msg2)
	case paddedLen(n) <= 2*hmacBlockSize:
		// Most caveats: a smaller buffer to clear.
		var inner [2 * hmacBlockSize]byte
		return hmacPadded(&k, inner[:], n, msg, msg2)
	}
	var inner [paddedMax]byte
	return hmacPadded(&k, inner[:], n, msg, msg2)
}

// hmacPadded is hmacSHA256 by paddedSum, with inner (zeroed, large enough
// for the n bytes of the inner hash's message padded) to lay out the inner
// hash's input in.
func hmacPadded(k *[hmacBlockSize]byte, inner []byte, n int, msg, msg2 []byte) [tailSize]byte {
	xorPad(inner, k, 0x3636363636363636)
	copy(inner[hmacBlockSize:], msg)
	copy(inner[hmacBlockSize+len(msg):], msg2)
	ih := paddedSum(inner[:pad(inner, n)])

	var outer [2 * hmacBlockSize]byte
	xorPad(outer[:], k, 0x5c5c5c5c5c5c5c5c)
	copy(outer[hmacBlockSize:], ih[:])
	return paddedSum(outer[:pad(outer[:], hmacBlockSize+tailSize)])
}

// hmacPortable is hmacSHA256 with the digest's own Write and Sum.
func hmacPortable(k *[hmacBlockSize]byte, msg, msg2 []byte) [tailSize]byte {
	var block [hmacBlockSize]byte
	var sum [tailSize]byte
	d := sha256.New()
	xorPad(block[:], k, 0x3636363636363636)
	d.Write(block[:])
	d.Write(msg)
	d.Write(msg2)
	d.Sum(sum[:0])
	d.Reset()
	xorPad(block[:], k, 0x5c5c5c5c5c5c5c5c)
	d.Write(block[:])
	d.Write(sum[:])
	d.Sum(sum[:0])
	return sum
}

// xorPad writes key XOR pad into the first 64 bytes of dst, eight bytes at
// a time.
func xorPad(dst []byte, key *[hmacBlockSize]byte, pad uint64) {
	_ = dst[hmacBlockSize-1]
	for i := 0; i < hmacBlockSize; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(key[i:])^pad)
	}
}

// paddedLen is the length of an n-byte message padded as SHA-256 pads it:
// a 1 bit, zeros, and the length in bits, to a multiple of 64 bytes.
func paddedLen(n int) int { return (n + 1 + 8 + sha256.BlockSize - 1) &^ (sha256.BlockSize - 1) }

// pad pads the n-byte message at the start of buf, whose bytes after it
// are zero, and returns the padded length.
func pad(buf []byte, n int) int {
	total := paddedLen(n)
	buf[n] = 0x80
	binary.BigEndian.PutUint64(buf[total-8:], uint64(n)*8)
	return total
}

// paddedSum returns the SHA-256 of the message that p holds padded: the
// state of a digest after writing p. Only when paddedOK.
func paddedSum(p []byte) [sha256.Size]byte {
	d := sha256.New()
	d.Write(p)
	var st [128]byte
	s, _ := d.(encoding.BinaryAppender).AppendBinary(st[:0])
	var sum [sha256.Size]byte
	copy(sum[:], s[len(sha256StateMagic):])
	return sum
}

// checkPadded reports whether paddedSum agrees with crypto/sha256 and
// hmacSHA256 with crypto/hmac on this build, on messages of one to several
// blocks. It runs with paddedOK set, so that hmacSHA256 takes the padded
// path.
func checkPadded() bool {
	d := sha256.New()
	ba, ok := d.(encoding.BinaryAppender)
	if !ok {
		return false
	}
	if st, err := ba.AppendBinary(nil); err != nil || len(st) < len(sha256StateMagic)+sha256.Size ||
		string(st[:len(sha256StateMagic)]) != sha256StateMagic {
		return false
	}
	key := []byte("checkPadded")
	for _, n := range []int{0, 1, 55, 56, 64, 119, 200, 300} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*31 + n)
		}
		want := hmac.New(sha256.New, key)
		want.Write(msg)
		got := hmacSHA256(key, msg[:n/3], msg[n/3:])
		var buf [paddedMax]byte
		copy(buf[:], msg)
		if !hmac.Equal(got[:], want.Sum(nil)) || paddedSum(buf[:pad(buf[:], n)]) != sha256.Sum256(msg) {
			return false
		}
	}
	return true
}

// finalize turns a proof's last tail into the tail that is encoded:
// HMAC(finalizationKey, tail).
func finalize(tail [tailSize]byte) [tailSize]byte {
	if finInner == nil {
		return hmacSHA256(finalizationKey, tail[:], nil)
	}
	if counting.Load() {
		opCount.hmac.Add(1)
	}
	ih := resumeSum(finInner, tail)
	return resumeSum(finOuter, ih)
}

// resumeSum returns the SHA-256 of a pad block, whose state st holds,
// followed by 32 bytes.
func resumeSum(st []byte, b [tailSize]byte) [sha256.Size]byte {
	d := sha256.New()
	if err := d.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
		panic("caveat: resuming SHA-256: " + err.Error()) // st is ours, checked at init
	}
	var last [hmacBlockSize]byte
	copy(last[:], b[:])
	last[tailSize] = 0x80
	binary.BigEndian.PutUint64(last[hmacBlockSize-8:], (hmacBlockSize+tailSize)*8)
	d.Write(last[:])
	var buf [128]byte
	s, _ := d.(encoding.BinaryAppender).AppendBinary(buf[:0])
	var sum [sha256.Size]byte
	copy(sum[:], s[len(sha256StateMagic):])
	return sum
}

// bindingID is SHA-256 of a tail; a BindToParentToken caveat holds a prefix
// of one of the parent's binding IDs (spec §4.7).
func bindingID(tail [tailSize]byte) [sha256.Size]byte {
	if counting.Load() {
		opCount.hash.Add(1)
	}
	if !paddedOK {
		return sha256.Sum256(tail[:])
	}
	var buf [sha256.BlockSize]byte
	copy(buf[:], tail[:])
	return paddedSum(buf[:pad(buf[:], tailSize)])
}
