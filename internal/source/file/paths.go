package file

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// LoadPaths reads files and directories named on a command line (hxds
// translate -f ...), once, with the same rules as a watched directory: a
// directory is read recursively, a file is read whatever its extension.
// Origins name files by the path as given. The error is non-nil only when a
// named path cannot be read at all; every other problem is in Result.Problems.
func LoadPaths(paths ...string) (*Result, error) {
	var (
		items    []item
		problems []problem
	)
	parse := func(name, abs string) {
		data, err := readFile(abs)
		if err != nil {
			problems = append(problems, fileProblem(name, "unreadable-file", "cannot read file: %v", pathErr(err)))
			return
		}
		its, probs := parseFile(name, data)
		items = append(items, its...)
		problems = append(problems, probs...)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if !fi.IsDir() {
			parse(filepath.ToSlash(p), p)
			continue
		}
		sr, err := scan(p)
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", p, err)
		}
		for _, pr := range sr.problems {
			pr.obj.File = path.Join(filepath.ToSlash(p), pr.obj.File)
			problems = append(problems, pr)
		}
		for _, rel := range sr.files {
			parse(path.Join(filepath.ToSlash(p), rel), filepath.Join(p, filepath.FromSlash(rel)))
		}
	}
	objects, more := assemble(items)
	return &Result{Objects: objects, Problems: toSet(append(problems, more...))}, nil
}

// Parse loads the documents of one in-memory file, with the same rules as a
// file on disk; name is used in origins. Fuzzers and tests use it.
func Parse(name string, data []byte) *Result {
	items, problems := parseFile(name, data)
	objects, more := assemble(items)
	return &Result{Objects: objects, Problems: toSet(append(problems, more...))}
}
