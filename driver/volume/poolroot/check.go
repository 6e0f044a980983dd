package poolroot

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// CheckHealth is one health check of the pool, logging each change of its health
// once: refresh finds it on this node (Refresh, with what the Manager
// knows), lacking tells an optional pool this node lacks (Lacking; asked
// only when the pool is not healthy), reported absent, at info. A pool that
// goes missing is reported unhealthy (it serves nothing new and nothing in
// it is deleted). It reports whether the pool came back into service
// (healthy now, not at the last check): the Manager then converges it.
func (p *Pool) CheckHealth(refresh func() (bool, error), lacking func() bool, log *logrus.Entry) (back bool) {
	healthy, err := refresh()
	absent := !healthy && lacking()
	wasHealthy, wasAbsent := p.SetHealth(healthy, absent)
	if wasHealthy == healthy && wasAbsent == absent {
		return false
	}
	log = log.WithField("pool", p.Name)
	switch {
	case healthy:
		log.Info("pool healthy: serving")
		return true
	case absent:
		log.Info(p.absentMessage())
	default:
		log.WithError(err).Warn("pool unhealthy: it serves nothing new and nothing in it is deleted")
	}
	return false
}

// absentMessage says why an optional pool is absent, and what brings it.
func (p *Pool) absentMessage() string {
	if p.Kind.Directory() {
		return fmt.Sprintf("pool absent (optional): %s does not exist on this node; it is taken into service when it appears", p.Spec.Path)
	}
	return fmt.Sprintf("pool absent (optional): none of its %d disks is on this node; it is taken into service when one appears", len(p.Disks))
}
