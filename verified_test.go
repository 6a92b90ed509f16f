package caveat

// verifiedParts splits a bundle verification's outcome into the verified
// caveats and the permission token's index (nil and -1 when it failed), for
// the tests that compare those two with what the vectors expect.
func verifiedParts(v *Verified, err error) (CaveatSet, int, error) {
	if err != nil {
		return nil, -1, err
	}
	return v.Caveats, v.Token, nil
}

// VerifiedParts is verifiedParts for the external tests.
var VerifiedParts = verifiedParts
