package sock_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ioreactor/reactor/internal/testutil"
	"github.com/ioreactor/reactor/sock"
)

// certRSAKey is the one 2048-bit RSA key the certificate tests share: RSA
// key generation is slow.
var certRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func certECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// certTemplate is a certificate valid from notBefore to notAfter; ca makes
// it able to sign others.
func certTemplate(cn string, notBefore, notAfter time.Time, ca bool) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"example.test"},
	}
	if ca {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		tmpl.DNSNames = nil
	}
	return tmpl
}

// certValid is a validity window around now.
func certValid(cn string, ca bool) *x509.Certificate {
	now := time.Now()
	return certTemplate(cn, now.Add(-time.Hour), now.Add(24*time.Hour), ca)
}

// certWeak maps a weak signature algorithm to what makes it by hand: its
// OID, its AlgorithmIdentifier parameters, and its hash.
var certWeak = map[x509.SignatureAlgorithm]struct {
	oid    asn1.ObjectIdentifier
	params asn1.RawValue
	digest func([]byte) []byte
	hash   crypto.Hash
}{
	x509.MD5WithRSA:    {asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}, asn1.NullRawValue, func(b []byte) []byte { h := md5.Sum(b); return h[:] }, crypto.MD5},
	x509.SHA1WithRSA:   {asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, asn1.NullRawValue, func(b []byte) []byte { h := sha1.Sum(b); return h[:] }, crypto.SHA1},
	x509.ECDSAWithSHA1: {asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}, asn1.RawValue{}, func(b []byte) []byte { h := sha1.Sum(b); return h[:] }, crypto.SHA1},
}

// certCreate signs tmpl for pub with signer, as parent (tmpl itself if
// parent is nil), using alg (0: Go's default). A weak algorithm that
// x509.CreateCertificate refuses (MD5, and SHA-1 in a Go that drops it) is
// made by certResign from a strong certificate. It returns the DER and the
// parsed certificate, whose SignatureAlgorithm is checked to be alg.
func certCreate(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer, alg x509.SignatureAlgorithm) (*x509.Certificate, []byte) {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	tmpl.SignatureAlgorithm = alg
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		if _, weak := certWeak[alg]; !weak {
			t.Fatalf("CreateCertificate(%v): %v", alg, err)
		}
		t.Logf("CreateCertificate refuses %v (%v): re-signing a SHA-256 certificate by hand", alg, err)
		tmpl.SignatureAlgorithm = 0
		if der, err = x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer); err != nil {
			t.Fatalf("CreateCertificate: %v", err)
		}
		der = certResign(t, der, signer, alg)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	if alg != 0 && c.SignatureAlgorithm != alg {
		t.Fatalf("certificate reports %v, want %v", c.SignatureAlgorithm, alg)
	}
	return c, der
}

// certResign rewrites a certificate's signature algorithm to alg (in the
// TBSCertificate and in the outer AlgorithmIdentifier) and signs the new
// TBS bytes with key, hashing with MD5 or SHA-1 by hand.
func certResign(t *testing.T, der []byte, key crypto.Signer, alg x509.SignatureAlgorithm) []byte {
	t.Helper()
	w := certWeak[alg]
	var cert struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &cert); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshalling certificate: %v (%d trailing bytes)", err, len(rest))
	}
	// The TBSCertificate is a SEQUENCE of: [0] version, serial number,
	// signature AlgorithmIdentifier, issuer, validity, subject, key, ...
	var tbs []asn1.RawValue
	if rest, err := asn1.Unmarshal(cert.TBS.FullBytes, &tbs); err != nil || len(rest) != 0 || len(tbs) < 7 {
		t.Fatalf("unmarshalling TBSCertificate: %v (%d trailing bytes, %d fields)", err, len(rest), len(tbs))
	}
	algID := pkix.AlgorithmIdentifier{Algorithm: w.oid, Parameters: w.params}
	algDER, err := asn1.Marshal(algID)
	if err != nil {
		t.Fatal(err)
	}
	tbs[2] = asn1.RawValue{FullBytes: algDER}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	digest := w.digest(tbsDER)
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(nil, k, w.hash, digest)
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, digest)
	default:
		t.Fatalf("cannot re-sign with a %T", key)
	}
	if err != nil {
		t.Fatalf("signing with %v: %v", alg, err)
	}
	cert.TBS = asn1.RawValue{FullBytes: tbsDER}
	cert.Alg = algID
	cert.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	out, err := asn1.Marshal(cert)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// certCheckWeakSignature proves c carries a genuine weak signature by
// parent's key, which Go's own verifier nonetheless refuses. parent must be
// a CA (c itself, if self-signed).
func certCheckWeakSignature(t *testing.T, c, parent *x509.Certificate) {
	t.Helper()
	w := certWeak[c.SignatureAlgorithm]
	digest := w.digest(c.RawTBSCertificate)
	switch pub := parent.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, w.hash, digest, c.Signature); err != nil {
			t.Fatalf("%v signature does not verify: %v", c.SignatureAlgorithm, err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, c.Signature) {
			t.Fatalf("%v signature does not verify", c.SignatureAlgorithm)
		}
	}
	var insecure x509.InsecureAlgorithmError
	if err := c.CheckSignatureFrom(parent); !errors.As(err, &insecure) {
		t.Fatalf("CheckSignatureFrom = %v, want x509.InsecureAlgorithmError", err)
	}
}

// certError requires err to be a *sock.CertificateError at index whose
// message contains every one of want.
func certError(t *testing.T, err error, index int, want ...string) *sock.CertificateError {
	t.Helper()
	var ce *sock.CertificateError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T), want a *sock.CertificateError", err, err)
	}
	if ce.Index != index {
		t.Errorf("Index = %d, want %d (%v)", ce.Index, index, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	return ce
}

func certPair(key crypto.PrivateKey, chain ...[]byte) tls.Certificate {
	return tls.Certificate{Certificate: chain, PrivateKey: key}
}

func TestCheckCertificateGood(t *testing.T) {
	ec := certECKey(t)
	_, ecDER := certCreate(t, certValid("ecdsa.example", false), nil, &ec.PublicKey, ec, 0)
	rk := certRSAKey()
	rc, rsaDER := certCreate(t, certValid("rsa.example", false), nil, &rk.PublicKey, rk, 0)
	if rc.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("RSA certificate signed with %v", rc.SignatureAlgorithm)
	}
	for name, c := range map[string]tls.Certificate{
		"ECDSA-P256": certPair(ec, ecDER),
		"RSA-2048":   certPair(rk, rsaDER),
	} {
		if err := sock.CheckCertificate(&c, time.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckCertificateMD5Refused(t *testing.T) {
	k := certRSAKey()
	c, der := certCreate(t, certValid("md5.example", true), nil, &k.PublicKey, k, x509.MD5WithRSA)
	certCheckWeakSignature(t, c, c)
	pair := certPair(k, der)
	err := sock.CheckCertificate(&pair, time.Now())
	certError(t, err, 0, "MD5", "signed with MD5-RSA", "CN=md5.example")
	want := "sock: TLS certificate 0 (CN=md5.example): signed with MD5-RSA, which TLS 1.2 and later peers reject"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestCheckCertificateSHA1Refused(t *testing.T) {
	rk := certRSAKey()
	ek := certECKey(t)
	for _, tc := range []struct {
		alg    x509.SignatureAlgorithm
		pub    crypto.PublicKey
		key    crypto.Signer
		name   string
		byHand bool // re-sign by hand even if CreateCertificate signs SHA-1
	}{
		{x509.SHA1WithRSA, &rk.PublicKey, rk, "SHA1-RSA", false},
		{x509.ECDSAWithSHA1, &ek.PublicKey, ek, "ECDSA-SHA1", false},
		{x509.SHA1WithRSA, &rk.PublicKey, rk, "SHA1-RSA", true},
		{x509.ECDSAWithSHA1, &ek.PublicKey, ek, "ECDSA-SHA1", true},
	} {
		name := tc.name
		if tc.byHand {
			name += "/by-hand"
		}
		t.Run(name, func(t *testing.T) {
			c, der := certCreate(t, certValid("sha1.example", true), nil, tc.pub, tc.key, tc.alg)
			if tc.byHand {
				// The path taken when CreateCertificate refuses SHA-1,
				// kept working while it still accepts it.
				_, strong := certCreate(t, certValid("sha1.example", true), nil, tc.pub, tc.key, 0)
				der = certResign(t, strong, tc.key, tc.alg)
				var err error
				if c, err = x509.ParseCertificate(der); err != nil {
					t.Fatal(err)
				}
				if c.SignatureAlgorithm != tc.alg {
					t.Fatalf("re-signed certificate reports %v, want %v", c.SignatureAlgorithm, tc.alg)
				}
			}
			certCheckWeakSignature(t, c, c)
			pair := certPair(tc.key, der)
			err := sock.CheckCertificate(&pair, time.Now())
			certError(t, err, 0, "SHA1", "signed with "+tc.name)
		})
	}
}

func TestCheckCertificateExpired(t *testing.T) {
	k := certECKey(t)
	nb := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2021, 6, 30, 12, 0, 0, 0, time.UTC)
	_, der := certCreate(t, certTemplate("old.example", nb, na, false), nil, &k.PublicKey, k, 0)
	pair := certPair(k, der)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "expired", "2021-06-30T12:00:00Z")
	// The same certificate was fine while it was valid.
	if err := sock.CheckCertificate(&pair, na.Add(-time.Hour)); err != nil {
		t.Errorf("within its validity: %v", err)
	}
}

func TestCheckCertificateNotYetValid(t *testing.T) {
	k := certECKey(t)
	nb := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	_, der := certCreate(t, certTemplate("future.example", nb, nb.Add(365*24*time.Hour), false), nil, &k.PublicKey, k, 0)
	pair := certPair(k, der)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "not valid before", nb.UTC().Format(time.RFC3339))
}

func TestCheckCertificateKeyMismatch(t *testing.T) {
	k, other := certECKey(t), certECKey(t)
	_, der := certCreate(t, certValid("mismatch.example", false), nil, &k.PublicKey, k, 0)
	pair := certPair(other, der)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "does not match", "CN=mismatch.example")
	// An RSA key for an ECDSA certificate does not match either.
	pair = certPair(certRSAKey(), der)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "does not match")
}

func TestCheckCertificateBroken(t *testing.T) {
	k := certECKey(t)
	_, der := certCreate(t, certValid("broken.example", false), nil, &k.PublicKey, k, 0)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want string
	}{
		{"nil", nil, "empty certificate chain"},
		{"empty chain", &tls.Certificate{PrivateKey: k}, "empty certificate chain"},
		{"no private key", &tls.Certificate{Certificate: [][]byte{der}}, "no private key"},
		{"not a signer", &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: "key"}, "cannot sign"},
		{"bad leaf DER", &tls.Certificate{Certificate: [][]byte{der[:len(der)/2]}, PrivateKey: k}, "cannot parse the leaf"},
		{"bad chain DER", &tls.Certificate{Certificate: [][]byte{der, []byte("junk")}, PrivateKey: k}, "cannot parse chain certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certError(t, sock.CheckCertificate(tc.cert, time.Now()), 0, tc.want)
		})
	}
}

func TestCheckCertificateSmallRSAKey(t *testing.T) {
	// crypto/rsa will not make a key this short unless told to.
	var small *rsa.PrivateKey
	t.Run("keygen", func(t *testing.T) {
		t.Setenv("GODEBUG", strings.TrimPrefix(os.Getenv("GODEBUG")+",rsa1024min=0", ","))
		var err error
		if small, err = rsa.GenerateKey(rand.Reader, 512); err != nil {
			t.Fatalf("GenerateKey(512): %v", err)
		}
	})
	if small == nil {
		t.FailNow()
	}
	// A CA with a good key signs it, so the short key itself never signs.
	ca := certRSAKey()
	caCert, _ := certCreate(t, certValid("CA", true), nil, &ca.PublicKey, ca, 0)
	_, der := certCreate(t, certValid("small.example", false), caCert, &small.PublicKey, ca, 0)
	pair := certPair(small, der)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "RSA key of 512 bits", "CN=small.example")
}

// certChain makes a leaf (ECDSA) signed by an intermediate (ECDSA) signed
// by a root (RSA, self-signed): the intermediate's signature is interAlg,
// the root's own is rootAlg. It returns the leaf's key and the DER of leaf,
// intermediate and root.
func certChain(t *testing.T, interAlg, rootAlg x509.SignatureAlgorithm) (crypto.Signer, [][]byte) {
	t.Helper()
	rootKey := certRSAKey()
	root, rootDER := certCreate(t, certValid("Test Root", true), nil, &rootKey.PublicKey, rootKey, rootAlg)
	interKey := certECKey(t)
	inter, interDER := certCreate(t, certValid("Test Intermediate", true), root, &interKey.PublicKey, rootKey, interAlg)
	leafKey := certECKey(t)
	_, leafDER := certCreate(t, certValid("leaf.example", false), inter, &leafKey.PublicKey, interKey, 0)
	return leafKey, [][]byte{leafDER, interDER, rootDER}
}

func TestCheckCertificateSHA1Intermediate(t *testing.T) {
	goodKey, goodChain := certChain(t, 0, 0)
	badKey, badChain := certChain(t, x509.SHA1WithRSA, 0)
	inter, _ := x509.ParseCertificate(badChain[1])
	root, _ := x509.ParseCertificate(badChain[2])
	certCheckWeakSignature(t, inter, root)

	cfg := &tls.Config{Certificates: []tls.Certificate{
		certPair(goodKey, goodChain...),
		certPair(badKey, badChain...),
	}}
	err := sock.CheckTLSConfig(cfg, time.Now(), true)
	ce := certError(t, err, 1, "chain certificate 1 (CN=Test Intermediate)", "signed with SHA1-RSA")
	if ce.Subject != "CN=leaf.example" {
		t.Errorf("Subject = %q, want the leaf's", ce.Subject)
	}
	// Without the root sent along, the intermediate is still at fault.
	pair := certPair(badKey, badChain[:2]...)
	certError(t, sock.CheckCertificate(&pair, time.Now()), 0, "chain certificate 1", "SHA1")
}

func TestCheckCertificateSHA1RootInChainAccepted(t *testing.T) {
	// A root's own signature is never checked by peers, and old roots are
	// commonly self-signed with SHA-1: sending one along is harmless.
	key, chain := certChain(t, 0, x509.SHA1WithRSA)
	if root, _ := x509.ParseCertificate(chain[2]); root.SignatureAlgorithm != x509.SHA1WithRSA {
		t.Fatalf("root signed with %v", root.SignatureAlgorithm)
	}
	pair := certPair(key, chain...)
	if err := sock.CheckCertificate(&pair, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTLSConfig(t *testing.T) {
	k := certECKey(t)
	_, der := certCreate(t, certValid("cfg.example", false), nil, &k.PublicKey, k, 0)
	good := certPair(k, der)
	now := time.Now()

	if err := sock.CheckTLSConfig(nil, now, true); err == nil {
		t.Error("nil config accepted")
	}
	if err := sock.CheckTLSConfig(nil, now, false); err == nil {
		t.Error("nil client config accepted")
	}
	if err := sock.CheckTLSConfig(&tls.Config{}, now, true); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("server config with no certificate: %v", err)
	}
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &good, nil }
	if err := sock.CheckTLSConfig(&tls.Config{GetCertificate: getCert}, now, true); err != nil {
		t.Errorf("server config with GetCertificate: %v", err)
	}
	getCfg := func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, nil }
	if err := sock.CheckTLSConfig(&tls.Config{GetConfigForClient: getCfg}, now, true); err != nil {
		t.Errorf("server config with GetConfigForClient: %v", err)
	}
	if err := sock.CheckTLSConfig(&tls.Config{Certificates: []tls.Certificate{good}}, now, true); err != nil {
		t.Errorf("server config with a good certificate: %v", err)
	}
	if err := sock.CheckTLSConfig(&tls.Config{}, now, false); err != nil {
		t.Errorf("client config with no certificate: %v", err)
	}
	if err := sock.CheckTLSConfig(&tls.Config{Certificates: []tls.Certificate{good}}, now, false); err != nil {
		t.Errorf("client config with a good certificate: %v", err)
	}
	// Certificates are checked even when GetCertificate is set, and a
	// client's certificates are checked too.
	bad := certPair(certECKey(t), der)
	for _, server := range []bool{true, false} {
		cfg := &tls.Config{Certificates: []tls.Certificate{good, good, bad}, GetCertificate: getCert}
		certError(t, sock.CheckTLSConfig(cfg, now, server), 2, "sock: TLS certificate 2 (CN=cfg.example)", "does not match")
	}
}

func certWritePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyPair(t *testing.T) {
	dir := testutil.TempDir(t)
	k, other := certECKey(t), certECKey(t)
	_, der := certCreate(t, certValid("load.example", false), nil, &k.PublicKey, k, 0)
	certFile := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	otherFile := filepath.Join(dir, "other-key.pem")
	certWritePEM(t, certFile, "CERTIFICATE", der)
	for path, key := range map[string]*ecdsa.PrivateKey{keyFile: k, otherFile: other} {
		p8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certWritePEM(t, path, "PRIVATE KEY", p8)
	}

	t.Run("good", func(t *testing.T) {
		c, err := sock.LoadKeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Certificate) != 1 || c.PrivateKey == nil {
			t.Fatalf("loaded %d certificates, key %T", len(c.Certificate), c.PrivateKey)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		_, err := sock.LoadKeyPair(certFile, otherFile)
		if err == nil {
			t.Fatal("mismatched pair accepted")
		}
		for _, w := range []string{certFile, otherFile, "does not match"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.pem")
		if _, err := sock.LoadKeyPair(missing, keyFile); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("missing certificate file: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		// The pair loads, but the check refuses it, naming the files.
		na := time.Date(2022, 3, 4, 5, 6, 7, 0, time.UTC)
		_, old := certCreate(t, certTemplate("expired.example", na.Add(-24*time.Hour), na, false), nil, &k.PublicKey, k, 0)
		oldFile := filepath.Join(dir, "expired.pem")
		certWritePEM(t, oldFile, "CERTIFICATE", old)
		_, err := sock.LoadKeyPair(oldFile, keyFile)
		certError(t, err, 0, "expired at 2022-03-04T05:06:07Z", oldFile, keyFile)
	})
}

// TestSelfSignedCertHandshake checks testutil.SelfSigned: the certificate
// passes the check, and serves as server certificate, client certificate
// and the root both sides verify against, over IPv4, IPv6 and a name.
func TestSelfSignedCertHandshake(t *testing.T) {
	certPEM, keyPEM, cert := testutil.SelfSigned(t, "localhost", "127.0.0.1", "::1")
	if err := sock.CheckCertificate(&cert, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if got := cert.Leaf.IPAddresses; len(got) != 2 || !got[0].Equal(net.ParseIP("127.0.0.1")) || !got[1].Equal(net.ParseIP("::1")) {
		t.Errorf("IP addresses %v", got)
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != "localhost" {
		t.Errorf("DNS names %v", got)
	}
	pool := testutil.CertPool(t, certPEM)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			srv := tls.Server(a, &tls.Config{
				Certificates: []tls.Certificate{cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			})
			cli := tls.Client(b, &tls.Config{
				Certificates: []tls.Certificate{cert},
				RootCAs:      pool,
				ServerName:   host,
			})
			done := make(chan error, 1)
			go func() { done <- srv.Handshake() }()
			cerr := cli.Handshake()
			if cerr != nil {
				// Unblock the server, which may be waiting for the client.
				a.Close()
			}
			serr := <-done
			if cerr != nil || serr != nil {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
		})
	}
}
