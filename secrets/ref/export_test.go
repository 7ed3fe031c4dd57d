package ref

// Unregister removes a scheme, so that a test's registration does not
// outlive it.
func Unregister(name string) {
	mu.Lock()
	defer mu.Unlock()
	delete(schemes, name)
}
