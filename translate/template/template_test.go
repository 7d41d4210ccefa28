package template

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/input"
)

func TestExpand(t *testing.T) {
	snap := input.NewSnapshot()
	snap.Secrets[input.NamespacedName{Namespace: "higress-system", Name: "creds"}] = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "higress-system"},
		Data:       map[string][]byte{"token": []byte("s3cr3t"), "tls.key.pem": []byte("K")},
	}
	snap.Secrets[input.NamespacedName{Namespace: "app", Name: "db"}] = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "app"},
		Data:       map[string][]byte{"password": []byte("pw")},
	}
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"Bearer ${secret.creds.token}", "Bearer s3cr3t", ""},
		{"${secret.creds.tls.key.pem}", "K", ""}, // keys may contain dots
		{"${secret.app/db.password}:${secret.creds.token}", "pw:s3cr3t", ""},
		{"${secret.missing.token}", "${secret.missing.token}", "Secret higress-system/missing not found"},
		{"a ${secret.creds.nokey} b ${secret.creds.token}", "a ${secret.creds.nokey} b ${secret.creds.token}", `has no key "nokey"`},
		{"${not.a.secret}", "${not.a.secret}", ""},
	} {
		got, _, err := Expand(tc.in, snap, "higress-system")
		if got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Expand(%q) error = %v, want %q", tc.in, err, tc.err)
		}
	}
}
