package quirks

// NoteMixedEUCoerced is recorded in applied_quirks when a cross-border document
// mixed GOODS and SERVICES lines and was coerced to the default (quirk 30).
const NoteMixedEUCoerced = "mixed_eu_goods_services_coerced_to_default"

// EUGoodsServices is quirk 30: every line of a cross-border sales document
// needs eu_goods_services_type_id, and it must be the same on every line
// (Sage: "must be the same on every line"). types are the lines' types as
// resolved by the policy's product-type map; the result is the one type every
// line takes: their common type, or defaultType when they differ (coerced
// reports that, and the run records NoteMixedEUCoerced). No lines gives
// defaultType.
func EUGoodsServices(types []string, defaultType string) (typ string, coerced bool) {
	for _, t := range types {
		switch {
		case typ == "":
			typ = t
		case t != typ:
			return defaultType, true
		}
	}
	if typ == "" {
		typ = defaultType
	}
	return typ, false
}
