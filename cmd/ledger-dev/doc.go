// Command ledger-dev runs the whole Ledger pipeline on one machine, for people
// and for CI: an embedded NATS server with JetStream, a throwaway Postgres
// cluster, the Magento and Sage simulators and every service, with a demo shop
// paired through the real pairing flow and Sage connected through the real OAuth
// flow.
//
//	ledger-dev run    serve until Ctrl-C, printing where each part listens
//	ledger-dev demo   drain a demo outbox, print one summary line, exit 0 only
//	                  when every event reached its expected terminal state with
//	                  no duplicate Sage document and nothing lost
//
// It is the only program that imports both the services and the simulators;
// the services never import each other.
package main
