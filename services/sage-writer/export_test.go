package sagewriter

// SetDeliveries makes s open its deliveries with open instead of from its own
// units (call it before Run): tests wrap the store's units to count calls.
func SetDeliveries(s *Service, open func() Delivery) { s.open = open }
