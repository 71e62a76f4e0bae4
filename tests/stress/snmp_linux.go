package main

import (
	"os"
	"strconv"
	"strings"
)

// udpDrops is how many datagrams the system's receive buffers have
// dropped (/proc/net/snmp, Udp: RcvbufErrors), and whether it could be
// read.
func udpDrops() (uint64, bool) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, false
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}
