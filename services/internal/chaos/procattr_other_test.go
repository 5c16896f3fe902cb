//go:build !linux

package chaos_test

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
