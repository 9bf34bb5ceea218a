package deployments

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// dockerfile is a parsed Dockerfile: just what the checks need.
type dockerfile struct {
	file   string // relative to deployments/, for messages
	stages []*stage
	byName map[string]*stage
	ignore []string // .dockerignore patterns of its build context
}

type stage struct {
	name, base string
	line       int
	workdir    string
	env        map[string]string // ENV, in order of appearance, last wins
	envLines   map[string]int
	expose     []int
	user       string
	entrypoint []string
	cmd        []string
	copies     []copyInstr
	builds     []goBuild
}

type copyInstr struct {
	line int
	from string   // stage name, "" for the build context
	srcs []string // context paths, or paths in stage from
	dest string   // absolute path in this stage
}

// goBuild is one `go build` in a RUN instruction.
type goBuild struct {
	line int
	out  string   // -o, absolute; ends with / for a directory
	pkgs []string // absolute paths in the stage
}

// outputs maps each built binary's path to its package's path.
func (g goBuild) outputs() map[string]string {
	out := map[string]string{}
	for _, p := range g.pkgs {
		if strings.HasSuffix(g.out, "/") || len(g.pkgs) > 1 {
			out[path.Join(g.out, path.Base(p))] = p
		} else {
			out[g.out] = p
		}
	}
	return out
}

// parseDockerfile reads file (relative to deployments/) and the dockerignore
// BuildKit uses with it: <file>.dockerignore, else the context's.
func parseDockerfile(file string) (*dockerfile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	df := &dockerfile{file: file, byName: map[string]*stage{}}
	var st *stage
	for _, in := range dockerInstructions(string(data)) {
		cmd, rest, _ := strings.Cut(in.text, " ")
		cmd, rest = strings.ToUpper(cmd), strings.TrimSpace(rest)
		if cmd == "FROM" {
			f := strings.Fields(rest)
			f = dropOptions(f)
			st = &stage{base: f[0], line: in.line, workdir: "/", env: map[string]string{}, envLines: map[string]int{}}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
				df.byName[st.name] = st
			}
			df.stages = append(df.stages, st)
			continue
		}
		if st == nil {
			if cmd != "ARG" {
				return nil, fmt.Errorf("%s:%d: %s before FROM", file, in.line, cmd)
			}
			continue
		}
		switch cmd {
		case "WORKDIR":
			st.workdir = absIn(st.workdir, rest)
		case "ENV":
			for k, v := range parseEnv(rest) {
				st.env[k], st.envLines[k] = v, in.line
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(p, "/tcp"), "/udp"))
				if err != nil {
					return nil, fmt.Errorf("%s:%d: EXPOSE %s: %v", file, in.line, p, err)
				}
				st.expose = append(st.expose, n)
			}
		case "USER":
			st.user = rest
		case "ENTRYPOINT", "CMD":
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				return nil, fmt.Errorf("%s:%d: %s must use the exec form [\"...\"] (distroless has no shell): %v", file, in.line, cmd, err)
			}
			if cmd == "CMD" {
				st.cmd = args
			} else {
				st.entrypoint, st.cmd = args, nil // ENTRYPOINT resets CMD
			}
		case "COPY", "ADD":
			c := copyInstr{line: in.line}
			var args []string
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &args); err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %v", file, in.line, cmd, err)
				}
			} else {
				for _, a := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(a, "--from="); ok {
						c.from = v
					} else if !strings.HasPrefix(a, "--") {
						args = append(args, a)
					}
				}
			}
			if len(args) < 2 {
				return nil, fmt.Errorf("%s:%d: %s needs a source and a destination", file, in.line, cmd)
			}
			c.srcs, c.dest = args[:len(args)-1], absIn(st.workdir, args[len(args)-1])
			if strings.HasSuffix(args[len(args)-1], "/") || args[len(args)-1] == "." {
				c.dest += "/"
			}
			st.copies = append(st.copies, c)
		case "RUN":
			if g, ok := parseGoBuild(rest, st.workdir); ok {
				g.line = in.line
				st.builds = append(st.builds, g)
			}
		}
	}
	ignoreFile := file + ".dockerignore"
	if _, err := os.Stat(ignoreFile); err != nil {
		ignoreFile = filepath.Join(repoRoot, ".dockerignore")
	}
	if data, err := os.ReadFile(ignoreFile); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				df.ignore = append(df.ignore, line)
			}
		}
	}
	return df, nil
}

type dockerInstruction struct {
	line int
	text string
}

// dockerInstructions joins continuation lines and drops comments.
func dockerInstructions(src string) []dockerInstruction {
	var out []dockerInstruction
	var cur []string
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == nil) {
			continue
		}
		if cur == nil {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur = append(cur, strings.TrimSpace(s))
			continue
		}
		cur = append(cur, trimmed)
		out = append(out, dockerInstruction{line: start, text: strings.Join(cur, " ")})
		cur = nil
	}
	return out
}

func dropOptions(f []string) []string {
	var out []string
	for _, s := range f {
		if !strings.HasPrefix(s, "--") {
			out = append(out, s)
		}
	}
	return out
}

// parseEnv reads ENV k=v k2="v 2" (or the old ENV k v).
func parseEnv(s string) map[string]string {
	out := map[string]string{}
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		out[k] = strings.TrimSpace(v)
		return out
	}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		out[k] = v
	}
	return out
}

// parseGoBuild finds `go build ... -o OUT PKG...` in a RUN command.
func parseGoBuild(run, workdir string) (goBuild, bool) {
	_, after, ok := strings.Cut(run, "go build")
	if !ok {
		return goBuild{}, false
	}
	g := goBuild{}
	f := strings.Fields(after)
	for i := 0; i < len(f); i++ {
		switch a := f[i]; {
		case a == "&&" || a == ";" || a == "|":
			i = len(f)
		case a == "-o" && i+1 < len(f):
			i++
			g.out = absIn(workdir, f[i])
			if strings.HasSuffix(f[i], "/") {
				g.out += "/"
			}
		case strings.HasPrefix(a, "-o="):
			g.out = absIn(workdir, a[3:])
		case strings.HasPrefix(a, "./") || a == ".":
			g.pkgs = append(g.pkgs, absIn(workdir, a))
		}
	}
	if g.out == "" {
		g.out = workdir + "/"
	}
	return g, true
}

func absIn(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// contextPath returns the build-context path copied to imagePath in stage
// st, if a COPY from the context put it there.
func (st *stage) contextPath(imagePath string) (string, bool) {
	for i := len(st.copies) - 1; i >= 0; i-- {
		c := st.copies[i]
		if c.from != "" {
			continue
		}
		for _, src := range c.srcs {
			src = path.Clean(src)
			if !strings.HasSuffix(c.dest, "/") { // a file, or a directory's contents, to dest
				if imagePath == c.dest {
					return src, true
				}
				if rel, ok := strings.CutPrefix(imagePath, c.dest+"/"); ok {
					return path.Join(src, rel), true
				}
				continue
			}
			info, err := os.Stat(filepath.Join(repoRoot, src))
			if err != nil {
				continue
			}
			target := c.dest + path.Base(src) // a file into a directory
			if info.IsDir() {
				target = strings.TrimSuffix(c.dest, "/") // a directory's contents into dest
			}
			if imagePath == target {
				return src, true
			}
			if rel, ok := strings.CutPrefix(imagePath, target+"/"); ok && info.IsDir() {
				return path.Join(src, rel), true
			}
		}
	}
	return "", false
}

// imagePath is the inverse of contextPath: where a COPY from the context put
// the context path ctx in stage st.
func (st *stage) imagePath(ctx string) (string, bool) {
	for _, c := range st.copies {
		if c.from != "" {
			continue
		}
		for _, src := range c.srcs {
			src = path.Clean(src)
			rel, ok := "", ctx == src
			if !ok {
				rel, ok = strings.CutPrefix(ctx, src+"/")
			}
			if src == "." {
				rel, ok = ctx, true
			}
			if !ok {
				continue
			}
			info, err := os.Stat(filepath.Join(repoRoot, src))
			switch {
			case err != nil:
				continue
			case info.IsDir():
				return path.Join(c.dest, rel), true
			case strings.HasSuffix(c.dest, "/"):
				return c.dest + path.Base(src), true
			default:
				return c.dest, true
			}
		}
	}
	return "", false
}

// ignored reports whether the dockerignore patterns exclude context path p
// (or a directory above it). It knows plain patterns, * ? [...] and a
// leading **/; an unsupported pattern is an error so the check never
// silently passes.
func (df *dockerfile) ignored(p string) (bool, error) {
	parts := strings.Split(path.Clean(p), "/")
	// As Docker does: the last pattern that matches decides, and a pattern
	// starting with "!" brings back what an earlier one excluded.
	ignored := false
	for _, pat := range df.ignore {
		pat, negated := strings.CutPrefix(pat, "!")
		if strings.Contains(strings.TrimPrefix(pat, "**/"), "**") {
			return false, fmt.Errorf("%s.dockerignore: pattern %q is not understood by this check; extend ignored()", df.file, pat)
		}
		pat = strings.TrimPrefix(path.Clean(strings.TrimPrefix(pat, "/")), "./")
		anyDepth := false
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			pat, anyDepth = rest, true
		}
		matched := false
		for i := range parts {
			if i > 0 && !anyDepth {
				break
			}
			for k := i + 1; k <= len(parts) && !matched; k++ {
				ok, err := path.Match(pat, strings.Join(parts[i:k], "/"))
				if err != nil {
					return false, fmt.Errorf("dockerignore pattern %q: %v", pat, err)
				}
				matched = ok
			}
		}
		if matched {
			ignored = !negated
		}
	}
	return ignored, nil
}

// entryBinary follows a target stage's ENTRYPOINT back to the package it was
// built from: ENTRYPOINT /collector <- COPY --from=build /out/collector <-
// go build -o /out/ ./cmd/collector. It returns the command's name.
func (df *dockerfile) entryBinary(st *stage) (string, error) {
	if len(st.entrypoint) == 0 {
		return "", fmt.Errorf("stage %s has no ENTRYPOINT", st.name)
	}
	exe := st.entrypoint[0]
	for _, c := range st.copies {
		if c.from == "" {
			continue
		}
		for _, src := range c.srcs {
			dest := c.dest
			if strings.HasSuffix(dest, "/") {
				dest += path.Base(src)
			}
			if dest != exe {
				continue
			}
			from := df.byName[c.from]
			if from == nil {
				return "", fmt.Errorf("line %d: COPY --from=%s: no such stage", c.line, c.from)
			}
			for _, g := range from.builds {
				if pkg, ok := g.outputs()[path.Clean(src)]; ok {
					ctx, ok := from.contextPath(pkg)
					if !ok {
						return "", fmt.Errorf("line %d: go build %s: no COPY puts that package into stage %s", g.line, pkg, from.name)
					}
					return path.Base(ctx), nil
				}
			}
			return "", fmt.Errorf("line %d: COPY --from=%s %s: no go build in stage %s writes that file", c.line, c.from, src, c.from)
		}
	}
	return "", fmt.Errorf("stage %s: ENTRYPOINT %s: no COPY --from puts a built binary there", st.name, exe)
}
