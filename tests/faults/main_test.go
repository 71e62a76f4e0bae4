package faults_test

import (
	"testing"

	"github.com/ioreactor/reactor/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
