package faults_test

import "testing"

// TestEMFILEInChild runs on Linux only (emfile_linux_test.go); here it
// says why.
func TestEMFILEInChild(t *testing.T) {
	t.Skip("Windows has no RLIMIT_NOFILE to lower: a process cannot be made to run out of socket handles this way; " +
		"the listener's back-off after a failed WSASocket needs the fault injection of issue 7")
}
