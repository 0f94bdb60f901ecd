package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Processes of the stack, in the order Down stops them.
func processes() []string {
	return []string{"ocl-controller", "tekton-controller", "kube-proxy", "kubelet", "kube-scheduler",
		"kube-controller-manager", "kube-apiserver", "containerd", "etcd", "registry"}
}

// pid returns the recorded pid of the process name, 0 when none.
func (s *Stack) pid(name string) int {
	b, err := os.ReadFile(filepath.Join(s.Dir, name+".pid"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// Running reports whether the local stack's process name is alive (not a zombie).
func (s *Stack) Running(name string) bool {
	if !s.Local() {
		return false
	}
	return alive(s.pid(name))
}

func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: Z is a zombie, X dead.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// start starts a background process logging to <Dir>/<name>.log and records its pid, unless
// it runs already. It outlives this program (its own process group); while this program runs,
// it is reaped when it exits.
func (s *Stack) start(name string, env []string, argv ...string) error {
	if s.Running(name) {
		s.logf("%s already running", name)
		return nil
	}
	log, err := os.Create(filepath.Join(s.Dir, name+".log"))
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }() // the child keeps its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(filepath.Join(s.Dir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// stop ends the process name: SIGTERM, SIGKILL after 30 s (the controller's shutdown releases
// the pools it holds, within 20 s), and returns once it is gone.
func (s *Stack) stop(name string) {
	pid := s.pid(name)
	if !alive(pid) {
		return
	}
	gone := func(d time.Duration) bool {
		for end := time.Now().Add(d); alive(pid) && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond) // polling the end of a process that may not be our child: no event to wait on
		}
		return !alive(pid)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !gone(30 * time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if !gone(10 * time.Second) {
			s.logf("%s (pid %d) did not end after SIGKILL", name, pid)
			return
		}
	}
	s.logf("%s stopped", name)
}

// waitFor polls ready every 200 ms until it holds; after timeout it fails with the last lines
// of what's log.
func (s *Stack) waitFor(ctx context.Context, what string, timeout time.Duration, ready func(context.Context) bool) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !ready(ctx) {
		select {
		case <-ctx.Done():
			tail, _ := os.ReadFile(filepath.Join(s.Dir, what+".log"))
			lines := strings.Split(strings.TrimRight(string(tail), "\n"), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			return fmt.Errorf("%s not ready after %s; last log lines:\n%s", what, timeout, strings.Join(lines, "\n"))
		case <-t.C:
		}
	}
	s.logf("%s ready in %ds", what, int(time.Since(start).Seconds()))
	return nil
}

// logContains is a readiness check: the process's log holds text.
func (s *Stack) logContains(name, text string) func(context.Context) bool {
	return func(context.Context) bool {
		b, err := os.ReadFile(filepath.Join(s.Dir, name+".log"))
		return err == nil && bytes.Contains(b, []byte(text))
	}
}

// run runs a command to its end, failing with its output.
func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}
