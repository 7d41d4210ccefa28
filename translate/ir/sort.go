package ir

import "sort"

// SortRoutes orders the routes of one host by SortKey: Class first (front-
// ends use it for route groups such as fallbacks, user routes, catch-alls,
// default backends); then exact before prefix before regex; longer paths;
// routes with a method condition before those without (with
// shorterMethodsFirst, as Higress does, shorter method regexes first among
// them); more header, then more query conditions; Order breaks ties.
func SortRoutes(routes []*Route, shorterMethodsFirst bool) {
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := routes[i].SortKey, routes[j].SortKey
		if a.Class != b.Class {
			return a.Class < b.Class
		}
		if a.PathKind != b.PathKind {
			return a.PathKind < b.PathKind
		}
		if a.PathLength != b.PathLength {
			return a.PathLength > b.PathLength
		}
		if (a.MethodLength > 0) != (b.MethodLength > 0) {
			return a.MethodLength > 0
		}
		if shorterMethodsFirst && a.MethodLength != b.MethodLength {
			return a.MethodLength < b.MethodLength
		}
		if a.HeaderCount != b.HeaderCount {
			return a.HeaderCount > b.HeaderCount
		}
		if a.QueryCount != b.QueryCount {
			return a.QueryCount > b.QueryCount
		}
		return a.Order < b.Order
	})
}
