package deephaven_test

import (
	"testing"

	"github.com/prometheus-deephaven-bridge/prometheus-deephaven-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
