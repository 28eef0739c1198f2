package sagesim

// euGoodsServicesTypes are the values of eu_goods_services_type_id.
var euGoodsServicesTypes = map[string]string{"GOODS": "Goods", "SERVICES": "Services"}

// checkEUGoodsServices is quirk EUGoodsServicesTypeRequired: on a cross-border
// sales document (see crossBorder) every line needs eu_goods_services_type_id
// ("This field is required." per line without it), the same on every line
// ("must be the same on every line" [I] wording). Off, the field is optional
// and may differ; a value other than GOODS or SERVICES fails either way.
func checkEUGoodsServices(q Quirks, cross bool, lines []invoiceLineInput) []APIError {
	if !q.EUGoodsServicesTypeRequired || !cross {
		return nil
	}
	var errs problems
	seen, mixed := "", false
	for i := range lines {
		switch t := str(lines[i].EUGoodsServicesTypeID); {
		case t == "":
			errs = append(errs, required("line_items.eu_goods_services_type_id"))
		case seen == "":
			seen = t
		case t != seen:
			mixed = true
		}
	}
	errs.when(mixed, apiErr(CodeRecordInvalid, "must be the same on every line", "line_items.eu_goods_services_type_id"))
	return errs
}
