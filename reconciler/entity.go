package reconciler

import "certops/plan"

// EntityInfo is plan.EntityInfo, the one description of an entity, under
// the name the admin API's Reconciler interface uses.
type EntityInfo = plan.EntityInfo
