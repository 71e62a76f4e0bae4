package sock

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseAddr turns "host:port" into an address. The host must be an IP
// literal or "localhost" (127.0.0.1); an empty host means all IPv4
// interfaces. The engine resolves no names: resolving is slow, blocking
// work that belongs to the caller.
func ParseAddr(s string) (netip.AddrPort, error) {
	if strings.HasPrefix(s, unixPrefix) {
		return netip.AddrPort{}, fmt.Errorf("sock: %q is a unix socket address: only stream Listen and Dial take one", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sock: address %q: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sock: address %q: bad port", s)
	}
	var ip netip.Addr
	switch host {
	case "":
		ip = netip.IPv4Unspecified()
	case "localhost":
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("sock: address %q: host must be an IP address or localhost", s)
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}
