package catalog

// PropKind is the property that says what an item of the DTaaS library
// is (dt:kind).
const PropKind = "dt:kind"

// Kinds of items (dt:kind): the assets of the DTaaS library, and what
// running twins produces.
const (
	KindDigitalTwin = "digital-twin"
	KindModel       = "model"
	KindTool        = "tool"
	KindData        = "data"
	KindFunction    = "function"
	KindResult      = "result"
	KindSnapshot    = "snapshot"
)

// Link relations and asset roles of twins.
const (
	// RelUses links a twin to an item it is built from.
	RelUses = "dt:uses"
	// RoleLifecycle marks a twin's phase scripts (the asset key is the
	// phase); RoleConfig its configuration files.
	RoleLifecycle = "lifecycle"
	RoleConfig    = "config"
	// PropAssetPath is an asset's path inside its item's folder of a
	// workspace (dt:path), when not the default: lifecycle/<key> for
	// lifecycle scripts, <key> for other files.
	PropAssetPath = "dt:path"
)
