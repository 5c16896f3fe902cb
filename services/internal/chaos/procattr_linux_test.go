package chaos_test

import "syscall"

// procAttr makes the kernel kill a worker if the test binary itself dies
// (e.g. go test's timeout), where t.Cleanup never runs.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
