package sock

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// minRSABits is the shortest RSA key Go's crypto/tls (through crypto/rsa)
// accepts by default; most other TLS stacks refuse shorter ones too.
const minRSABits = 1024

// CertificateError says why a certificate cannot work. It is returned when
// TLS is configured, so that a certificate every peer would refuse is
// reported with its reason instead of as a handshake failure later.
type CertificateError struct {
	// Index is the certificate's position in tls.Config.Certificates (0
	// for CheckCertificate and LoadKeyPair).
	Index int
	// Subject is the subject of the certificate's leaf, as in "CN=example",
	// or empty if the leaf could not be parsed. When the fault is in a
	// certificate further along the chain, Reason names that certificate.
	Subject string
	// Reason says what is wrong, e.g. "signed with SHA1-RSA, which TLS 1.2
	// and later peers reject".
	Reason string
}

// Error formats the error as "sock: TLS certificate 0 (CN=example): reason".
func (e *CertificateError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("sock: TLS certificate %d: %s", e.Index, e.Reason)
	}
	return fmt.Sprintf("sock: TLS certificate %d (%s): %s", e.Index, e.Subject, e.Reason)
}

// CheckCertificate reports, as a *CertificateError with Index 0, the first
// reason cert cannot work at time now, or nil if none is found. It checks:
//
//   - the chain is not empty and every certificate in it parses;
//   - the private key is present, is a crypto.Signer, and its public key
//     equals the leaf's;
//   - no RSA key in the chain is shorter than 1024 bits;
//   - the leaf and every intermediate are valid at now (neither expired
//     nor not yet valid);
//   - the leaf and every intermediate are signed with neither MD5 nor SHA-1
//     (MD5WithRSA, SHA1WithRSA, ECDSAWithSHA1, DSAWithSHA1, and MD2WithRSA),
//     which TLS 1.2 and later peers, and Go's own verifier, reject.
//
// A self-signed certificate after the leaf (a root sent along with the
// chain) is exempt from the date and signature checks: peers verify against
// their own copy of a root and never check a root's signature.
func CheckCertificate(cert *tls.Certificate, now time.Time) error {
	return checkCertificate(cert, 0, now)
}

// CheckTLSConfig checks a TLS configuration before a listener (server
// true) or a connector (server false) uses it, and returns the first
// problem found, or nil. A server needs at least one certificate unless
// GetCertificate or GetConfigForClient supplies them; a client's
// certificates are optional. Every certificate in cfg.Certificates is
// checked as by CheckCertificate, and a fault is returned as a
// *CertificateError whose Index is the certificate's position. A nil cfg is
// an error.
func CheckTLSConfig(cfg *tls.Config, now time.Time, server bool) error {
	if cfg == nil {
		return errors.New("sock: nil TLS config")
	}
	if server && len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return errors.New("sock: TLS server config has no certificate (set Certificates, GetCertificate or GetConfigForClient)")
	}
	for i := range cfg.Certificates {
		if err := checkCertificate(&cfg.Certificates[i], i, now); err != nil {
			return err
		}
	}
	return nil
}

// LoadKeyPair reads a PEM certificate chain and its private key as
// tls.LoadX509KeyPair does, then checks the pair with CheckCertificate at
// the current time. Every error names both files; a check failure wraps the
// *CertificateError, so errors.As finds it.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sock: loading TLS key pair (certificate file %s, key file %s): %w", certFile, keyFile, err)
	}
	if err := CheckCertificate(&cert, time.Now()); err != nil {
		return tls.Certificate{}, fmt.Errorf("%w (certificate file %s, key file %s)", err, certFile, keyFile)
	}
	return cert, nil
}

func checkCertificate(cert *tls.Certificate, index int, now time.Time) error {
	fail := func(subject, format string, args ...any) error {
		return &CertificateError{Index: index, Subject: subject, Reason: fmt.Sprintf(format, args...)}
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return fail("", "empty certificate chain")
	}
	chain := make([]*x509.Certificate, len(cert.Certificate))
	for i, der := range cert.Certificate {
		if i == 0 && cert.Leaf != nil && bytes.Equal(cert.Leaf.Raw, der) {
			chain[0] = cert.Leaf
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			if i == 0 {
				return fail("", "cannot parse the leaf: %v", err)
			}
			return fail(chain[0].Subject.String(), "cannot parse chain certificate %d: %v", i, err)
		}
		chain[i] = c
	}
	leaf := chain[0]
	subject := leaf.Subject.String()

	if cert.PrivateKey == nil {
		return fail(subject, "no private key")
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fail(subject, "private key of type %T cannot sign", cert.PrivateKey)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fail(subject, "private key's public key of type %T cannot be compared", signer.Public())
	}
	if !pub.Equal(leaf.PublicKey) {
		return fail(subject, "private key does not match the certificate's public key")
	}

	for i, c := range chain {
		// where names the certificate at fault when it is not the leaf.
		where := ""
		if i > 0 {
			where = fmt.Sprintf("chain certificate %d (%s): ", i, c.Subject.String())
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N != nil && k.N.BitLen() < minRSABits {
			return fail(subject, "%sRSA key of %d bits, shorter than the %d bits TLS peers require", where, k.N.BitLen(), minRSABits)
		}
		if i > 0 && selfSigned(c) {
			continue
		}
		if now.After(c.NotAfter) {
			return fail(subject, "%sexpired at %s", where, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return fail(subject, "%snot valid before %s", where, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if weakSignature(c.SignatureAlgorithm) {
			return fail(subject, "%ssigned with %v, which TLS 1.2 and later peers reject", where, c.SignatureAlgorithm)
		}
	}
	return nil
}

// weakSignature reports whether a signature algorithm hashes with MD2, MD5
// or SHA-1.
func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		return true
	}
	return false
}

// selfSigned reports whether c names itself as its issuer (and, if it
// says which key signed it, that key is its own): a root.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}
