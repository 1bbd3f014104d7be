// Package parallel holds the small helpers the sync packages share:
// ForEach (bounded parallel calls that stop starting new ones when the
// context ends), OrDefault and LoggerOr (option defaults).
//
// It imports only the standard library, so that sync/plan may use it.
package parallel
