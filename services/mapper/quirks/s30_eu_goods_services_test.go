package quirks

import "testing"

func TestEUGoodsServices(t *testing.T) {
	t.Parallel()
	if typ, c := EUGoodsServices([]string{"SERVICES", "SERVICES"}, "GOODS"); typ != "SERVICES" || c {
		t.Errorf("common type: %s %v", typ, c)
	}
	if typ, c := EUGoodsServices([]string{"GOODS", "SERVICES"}, "GOODS"); typ != "GOODS" || !c {
		t.Errorf("mixed: %s %v", typ, c)
	}
	if typ, c := EUGoodsServices(nil, "SERVICES"); typ != "SERVICES" || c {
		t.Errorf("none: %s %v", typ, c)
	}
}
