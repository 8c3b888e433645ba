package config

// RemoteWriteConfig is the receiver of Prometheus's remote write protocol
// (POST /api/v1/write): the samples it receives become rows of the samples
// table.
type RemoteWriteConfig struct {
	// Enabled turns the receiver on. Default true: it costs nothing until
	// a Prometheus is pointed at it.
	Enabled bool `yaml:"enabled"`
	// Match keeps the series whose labels match at least one of these
	// selectors, e.g. '{__name__=~"node_cpu.*", job="node"}' or
	// 'up{job="node"}'. Default: every series.
	Match []string `yaml:"match,omitempty"`
	// MaxBodyBytes bounds a request body, both as sent (snappy-compressed)
	// and decompressed; larger requests get 413. Default 32 MiB, as in
	// Prometheus's own receiver.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// DefaultRemoteWriteMaxBodyBytes is the default of remote_write.max_body_bytes.
const DefaultRemoteWriteMaxBodyBytes = 32 << 20

func (c *RemoteWriteConfig) validate(v *validator, key keyPath) {
	v.positive(key.field("max_body_bytes"), c.MaxBodyBytes)
	for i, sel := range c.Match {
		if _, err := ParseSelector(sel); err != nil {
			v.errorf(key.field("match").index(i), "%v", err)
		}
	}
}
