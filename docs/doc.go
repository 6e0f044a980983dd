// Package docs holds localdisk's operator documentation (the Markdown files
// of this directory). It has no code: its test checks the documentation
// against the code (flags, pools-file fields, parameters, record fields,
// metric names) and checks every relative link.
package docs
