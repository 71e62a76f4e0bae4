//go:build lockcheck

#include "textflag.h"

// func getg() uintptr
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVD g, R0 // g is the runtime's name for R28, which holds it
	MOVD R0, ret+0(FP)
	RET
