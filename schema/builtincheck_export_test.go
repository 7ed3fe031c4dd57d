package schema

// SetBuiltinCheck turns validBuiltin on or off for a test and returns the
// previous setting. Tests that call it must not run in parallel.
func SetBuiltinCheck(on bool) bool {
	was := builtinCheckOn
	builtinCheckOn = on
	return was
}

// BuiltinAccepts counts the documents of an entity file that validBuiltin
// accepts without CUE: the test of the check is not vacuous.
func BuiltinAccepts(path string, src []byte) int {
	var errs ErrorList
	n := 0
	for _, d := range splitDocs(path, loneCRToLF(src), &errs) {
		raw, ok := decodeAST(d.expr)
		if ok && validBuiltin(d.expr, raw) {
			n++
		}
	}
	return n
}
