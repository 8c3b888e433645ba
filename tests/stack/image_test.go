package stack

import (
	"bytes"
	"image"
	"image/png"
)

// The Deephaven grid draws its cells on a canvas, so the page's DOM does not
// hold the rows. These helpers read the screenshot instead. They assume the
// default dark theme: light text on dark cell backgrounds.

// textLuma is the brightness (0-255) above which a pixel counts as text. Cell
// backgrounds, row stripes and grid lines of the dark theme stay far below,
// the grid's white and yellow text far above.
const textLuma = 140

func decodePNG(b []byte) (image.Image, error) {
	return png.Decode(bytes.NewReader(b))
}

func luma(img image.Image, x, y int) uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	// ITU-R BT.601 weights, 16-bit channels scaled to 0-255.
	return (299*r + 587*g + 114*b) / 1000 >> 8
}

// textLines counts the horizontal bands of text in the left part of img
// (x < width, above the bottom scrollbar): for a grid, the header plus one
// band per drawn row.
func textLines(img image.Image, width int) int {
	bounds := img.Bounds()
	if width > bounds.Dx() {
		width = bounds.Dx()
	}
	lines, inLine := 0, false
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		text := false
		for x := bounds.Min.X; x < bounds.Min.X+width; x++ {
			if luma(img, x, y) > textLuma {
				text = true
				break
			}
		}
		if text && !inLine {
			lines++
		}
		inLine = text
	}
	return lines
}

// paintedFraction is the share of img's pixels that differ from its top-left
// pixel, a background colour: a blank page gives 0.
func paintedFraction(img image.Image) float64 {
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Min.Y)
	br, bgc, bb, _ := bg.RGBA()
	diff := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r, br)+absDiff(g, bgc)+absDiff(bl, bb) > 3*0x0800 {
				diff++
			}
		}
	}
	return float64(diff) / float64(((b.Dx()+1)/2)*((b.Dy()+1)/2))
}

// changedFraction is the share of pixels that differ between two
// screenshots of the same size; 1 if there is no previous one.
func changedFraction(prev, cur image.Image) float64 {
	if prev == nil || prev.Bounds() != cur.Bounds() {
		return 1
	}
	b := cur.Bounds()
	diff := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := prev.At(x, y).RGBA()
			r2, g2, b2, _ := cur.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				diff++
			}
		}
	}
	return float64(diff) / float64(b.Dx()*b.Dy())
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
