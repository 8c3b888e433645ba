package config

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// ParseSelector parses a label selector such as '{severity=~"crit.*"}' or
// 'up{job="x"}' (a metric name is a __name__ matcher) with Prometheus's
// own parser. A selector that matches everything ("{}") is refused: leave
// the list empty for that.
func ParseSelector(s string) ([]*labels.Matcher, error) {
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("invalid selector %q: %w", s, err)
	}
	if len(ms) == 0 {
		return nil, errors.New("empty selector {} matches everything; leave match out instead")
	}
	return ms, nil
}
