package gen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// WriteDir writes every object of the spec as multi-document YAML files into
// dir (created if needed), grouped Spec.ObjectsPerFile to a file:
// 00-namespaces.yaml, 10-services-NNNN.yaml (Service + EndpointSlice pairs),
// 20-secrets-NNNN.yaml and 30-ingresses-NNNN.yaml. Loading dir gives the
// same objects as Objects(s). Files are written atomically (temp + rename).
func WriteDir(dir string, s Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	byFile := map[string][]runtime.Object{}
	var files []string
	for _, o := range Objects(s) {
		if _, ok := byFile[o.File]; !ok {
			files = append(files, o.File)
		}
		byFile[o.File] = append(byFile[o.File], o.Obj)
	}
	for _, f := range files {
		if err := writeObjects(filepath.Join(dir, f), byFile[f]); err != nil {
			return err
		}
	}
	return nil
}

// WriteIngress rewrites the file of Ingress i in a directory made by WriteDir
// with that Ingress at revision rev (the others of the file unchanged): one
// route changes.
func WriteIngress(dir string, s Spec, i, rev int) error {
	s = s.Normalize()
	if i < 0 || i >= s.Ingresses {
		return fmt.Errorf("ingress %d out of range [0,%d)", i, s.Ingresses)
	}
	chunk := i / s.ObjectsPerFile
	var objs []runtime.Object
	for j := chunk * s.ObjectsPerFile; j < min((chunk+1)*s.ObjectsPerFile, s.Ingresses); j++ {
		r := 0
		if j == i {
			r = rev
		}
		objs = append(objs, Ingress(s, j, r))
	}
	return writeObjects(filepath.Join(dir, fmt.Sprintf("30-ingresses-%04d.yaml", chunk)), objs)
}

// WriteEndpointSlice rewrites the file of Service i in a directory made by
// WriteDir with its EndpointSlice at revision rev: one endpoint changes.
func WriteEndpointSlice(dir string, s Spec, i, rev int) error {
	s = s.Normalize()
	if i < 0 || i >= s.Services {
		return fmt.Errorf("service %d out of range [0,%d)", i, s.Services)
	}
	chunk := i / s.ObjectsPerFile
	var objs []runtime.Object
	for j := chunk * s.ObjectsPerFile; j < min((chunk+1)*s.ObjectsPerFile, s.Services); j++ {
		r := 0
		if j == i {
			r = rev
		}
		objs = append(objs, Service(s, j), EndpointSlice(s, j, r))
	}
	return writeObjects(filepath.Join(dir, fmt.Sprintf("10-services-%04d.yaml", chunk)), objs)
}

// Marshal renders objects as one multi-document YAML stream.
func Marshal(objs []runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("marshal %T: %w", o, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func writeObjects(path string, objs []runtime.Object) error {
	b, err := Marshal(objs)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// WriteFileAtomic writes data to a hidden temporary file beside path (the
// config dir watcher skips dot files) and renames it over path, so the
// watcher never reads a half-written file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
