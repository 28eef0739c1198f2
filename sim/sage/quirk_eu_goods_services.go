package sagesim

// euGoodsServicesTypes are the values of eu_goods_services_type_id (swagger enum).
var euGoodsServicesTypes = map[string]string{"GOODS": "Goods", "SERVICES": "Services"}

// Quirk §30 (B8): on a cross-border sales document (see crossBorder) every line
// needs eu_goods_services_type_id, and it must be the same on every line. A
// naive line without it gets (after the §20 umbrella)
//
//	{"$severity":"error","$dataCode":"RecordInvalid","$message":"This field is required.","$source":"line_items.eu_goods_services_type_id"}
//
// and a document mixing GOODS and SERVICES lines gets
//
//	{"$severity":"error","$dataCode":"RecordInvalid","$message":"must be the same on every line","$source":"line_items.eu_goods_services_type_id"}
//
// With the quirk off the field is optional and may differ. A value other than
// GOODS or SERVICES is rejected either way ("is not included in the list").
func checkEUGoodsServices(q Quirks, cross bool, lines []invoiceLineInput) []APIError {
	if !q.EUGoodsServicesTypeRequired || !cross {
		return nil
	}
	var errs []APIError
	seen := ""
	mixed := false
	for i := range lines {
		t := str(lines[i].EUGoodsServicesTypeID)
		switch {
		case t == "":
			errs = append(errs, required("line_items.eu_goods_services_type_id"))
		case seen == "":
			seen = t
		case t != seen:
			mixed = true
		}
	}
	if mixed {
		errs = append(errs, apiErr(CodeRecordInvalid, "must be the same on every line", "line_items.eu_goods_services_type_id"))
	}
	return errs
}
