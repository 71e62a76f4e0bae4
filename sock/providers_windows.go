package sock

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/ioreactor/reactor/internal/lock"
)

// Skip-on-success (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS): with it, an
// overlapped operation that completes at once queues no packet, so the
// engine handles it at once, exactly once. It is safe only when every
// Winsock provider for the protocols in use is an IFS provider
// (XP1_IFS_HANDLES): a layered, non-IFS provider may complete an
// operation at once and still queue a packet, which would then be handled
// twice. The decision is made once per engine from the providers the
// system reports, and again per socket from the real result of
// SetFileCompletionNotificationModes.

// Provider is what the decision needs to know about one Winsock provider.
type Provider struct {
	Name     string
	Protocol int32  // IPPROTO_TCP, IPPROTO_UDP, ...
	Flags    uint32 // dwServiceFlags1: XP1_IFS_HANDLES is the one that matters
}

// IFS reports whether the provider hands out real IFS handles.
func (p Provider) IFS() bool { return p.Flags&windows.XP1_IFS_HANDLES != 0 }

// decideSkip applies the rule: skip only if wanted and every provider for
// TCP (the protocol in use) is IFS. No provider at all is a refusal too.
func decideSkip(want bool, providers []Provider, err error) SkipDecision {
	switch {
	case !want:
		return SkipDecision{Reason: "switched off by configuration"}
	case err != nil:
		return SkipDecision{Reason: "providers unknown: " + err.Error()}
	}
	n := 0
	for _, p := range providers {
		if p.Protocol != windows.IPPROTO_TCP {
			continue
		}
		n++
		if !p.IFS() {
			return SkipDecision{Reason: fmt.Sprintf("TCP provider %q is not IFS (flags %#x)", p.Name, p.Flags)}
		}
	}
	if n == 0 {
		return SkipDecision{Reason: "no TCP provider reported"}
	}
	return SkipDecision{Skip: true, Reason: fmt.Sprintf("all %d TCP providers are IFS", n)}
}

// providersOverride, when set (tests), replaces the system's list.
var (
	providersMu       lock.Mutex[providersOverrideMu]
	providersOverride func() ([]Provider, error)
)

// providersOverrideMu is the lock class of providersMu (internal/lock).
type providersOverrideMu struct{}

// SetProviders makes the engine see providers instead of the system's
// (nil restores the system's). Tests use it to run both completion modes
// on any machine: Wine reports its providers as IFS.
func SetProviders(f func() ([]Provider, error)) (restore func()) {
	providersMu.Lock()
	old := providersOverride
	providersOverride = f
	providersMu.Unlock()
	return func() {
		providersMu.Lock()
		providersOverride = old
		providersMu.Unlock()
	}
}

func providers() ([]Provider, error) {
	providersMu.Lock()
	f := providersOverride
	providersMu.Unlock()
	if f != nil {
		return f()
	}
	return systemProviders()
}

// systemProviders asks Winsock for the TCP providers (filtered by
// protocol, as an unfiltered list also holds non-IFS IPX and others that
// are not in use), retrying while the buffer is too small.
func systemProviders() ([]Provider, error) {
	protocols := [2]int32{windows.IPPROTO_TCP, 0}
	size := uint32(4 * unsafe.Sizeof(windows.WSAProtocolInfo{}))
	for range 8 {
		buf := make([]windows.WSAProtocolInfo, int(size)/int(unsafe.Sizeof(windows.WSAProtocolInfo{}))+1)
		size = uint32(len(buf)) * uint32(unsafe.Sizeof(windows.WSAProtocolInfo{}))
		n, err := windows.WSAEnumProtocols(&protocols[0], &buf[0], &size)
		if errors.Is(err, windows.WSAENOBUFS) {
			continue // size now holds what is needed
		}
		if err != nil {
			return nil, fmt.Errorf("WSAEnumProtocols: %w", err)
		}
		out := make([]Provider, 0, n)
		for _, pi := range buf[:n] {
			out = append(out, Provider{Name: windows.UTF16ToString(pi.ProtocolName[:]), Protocol: pi.Protocol, Flags: pi.ServiceFlags1})
		}
		return out, nil
	}
	return nil, errors.New("WSAEnumProtocols: the provider list kept growing")
}

// startPlatform decides the completion mode from the providers, and says
// so in the log.
func (e *Env) startPlatform() error {
	list, err := providers()
	e.skip = decideSkip(!e.NoSkipOnSuccess, list, err)
	e.logf("reactor: IOCP skip-on-success %s: %s", map[bool]string{true: "on", false: "off"}[e.skip.Skip], e.skip.Reason)
	return nil
}

// setSkip turns skip-on-success on for one socket and reports whether the
// system accepted it: the per-socket record of the real result.
func setSkip(s windows.Handle) bool {
	err := windows.SetFileCompletionNotificationModes(s, windows.FILE_SKIP_COMPLETION_PORT_ON_SUCCESS|windows.FILE_SKIP_SET_EVENT_ON_HANDLE)
	return err == nil
}
