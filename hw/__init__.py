"""obscura gateware: Amaranth components and the bit-exact numpy models that specify them."""
