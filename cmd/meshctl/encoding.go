package main

import (
	"encoding/base64"
	"encoding/hex"
)

// codec is --encoding: how KEY, VALUE and MEMBER arguments are read and
// keys, values and members printed.
type codec string

const (
	encRaw    codec = "raw"
	encHex    codec = "hex"
	encBase64 codec = "base64"
)

func codecFor(name string) (codec, error) {
	switch c := codec(name); c {
	case encRaw, encHex, encBase64:
		return c, nil
	}
	return "", usageErrorf("--encoding must be raw, hex or base64, got %q", name)
}

// decode reads an argument; what names it in the error.
func (c codec) decode(what, s string) ([]byte, error) {
	var b []byte
	var err error
	switch c {
	case encHex:
		b, err = hex.DecodeString(s)
	case encBase64:
		b, err = base64.StdEncoding.DecodeString(s)
	default:
		return []byte(s), nil
	}
	if err != nil {
		return nil, usageErrorf("%s %q is not valid %s (--encoding %s): %v", what, s, c, c, err)
	}
	return b, nil
}

// encode prints b; raw prints the bytes as they are.
func (c codec) encode(b []byte) string {
	switch c {
	case encHex:
		return hex.EncodeToString(b)
	case encBase64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return string(b)
}

// key reads a KEY argument and refuses an empty one with the reason.
func (a *app) key(arg string) ([]byte, error) {
	k, err := a.enc.decode("KEY", arg)
	if err != nil {
		return nil, err
	}
	if len(k) == 0 {
		return nil, usageErrorf("the key is empty: a key is 1 to 1024 bytes")
	}
	return k, nil
}
