"""Container names: Docker's validation rule and made-up adjective_surname names.

The word lists are kran's own: adjectives of weather, colour, temper and
craft, and surnames of scientists, engineers and mathematicians.
"""

from __future__ import annotations

import re
import secrets

from kran import errors

VALID_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")

ADJECTIVES = (
    "agile", "airy", "amber", "ample", "arctic", "ardent", "astral", "azure", "balmy", "bashful",
    "beaming", "blithe", "breezy", "brisk", "bubbly", "candid", "careful", "cheery", "civil",
    "clever", "cobalt", "cosmic", "crimson", "crisp", "curious", "dapper", "daring", "deft",
    "devout", "dewy", "diligent", "dreamy", "earnest", "eager", "electric", "elegant", "emerald",
    "fearless", "fervent", "fiery", "fluent", "frosty", "frugal", "gentle", "gilded", "glad",
    "golden", "graceful", "hardy", "hearty", "humble", "icy", "idle", "indigo", "jaunty",
    "jovial", "keen", "kindly", "lively", "lucid", "lunar", "mellow", "merry", "misty", "modest",
    "nimble", "noble", "patient", "placid", "plucky", "polar", "prudent", "quiet", "radiant",
    "rapid", "rustic", "sandy", "scarlet", "serene", "shiny", "silent", "silver", "sleepy",
    "snowy", "solar", "spry", "steady", "stoic", "sturdy", "sunny", "swift", "tidy", "tranquil",
    "upbeat", "valiant", "velvet", "vivid", "wary", "whimsical", "windy", "witty", "zesty",
)

SURNAMES = (
    "abel", "agnesi", "alhazen", "ampere", "archimedes", "avogadro", "babbage", "backus",
    "bardeen", "bernoulli", "wilkes", "bohr", "boltzmann", "boole", "born", "bose",
    "brahe", "brattain", "broglie", "cantor", "carnot", "cauchy", "cavendish", "cerf",
    "chandrasekhar", "chebyshev", "clausius", "codd", "conway", "copernicus", "coulomb",
    "cray", "curie", "dalton", "darwin", "dedekind", "descartes", "diesel", "dijkstra",
    "dirac", "doppler", "edison", "ehrenfest", "einstein", "engelbart", "euclid", "euler",
    "faraday", "fermat", "fermi", "feynman", "fibonacci", "fourier", "franklin", "fresnel",
    "gabor", "galilei", "galois", "gauss", "germain", "gibbs", "godel", "goldberg", "hamilton",
    "hamming", "hartree", "hawking", "heaviside", "heisenberg", "helmholtz", "hertz",
    "hilbert", "hodgkin", "hooke", "hopper", "hubble", "huffman", "huygens", "jacobi",
    "joliot", "joule", "kelvin", "kepler", "kernighan", "kilby", "knuth", "kolmogorov",
    "kovalevskaya", "lagrange", "lamarr", "landau", "laplace", "lavoisier", "leavitt",
    "leibniz", "liskov", "lorentz", "lovelace", "lyapunov", "markov", "maxwell", "mcclintock",
    "meitner", "mendel", "mendeleev", "michelson", "minsky", "mirzakhani", "moore", "morse",
    "napier", "nash", "neumann", "newton", "nobel", "noether", "nyquist", "ohm", "pascal",
    "pasteur", "pauli", "pavlov", "planck", "poincare", "raman", "ramanujan", "riemann",
    "ritchie", "roentgen", "rutherford", "sagan", "schrodinger", "shannon", "shockley",
    "somerville", "stallman", "steinmetz", "stokes", "sutherland", "tesla", "thompson",
    "torvalds", "turing", "volta", "watt", "wiener", "wirth", "yalow", "yukawa", "zuse",
)


def validate(name: str) -> str:
    """The name as stored (without a leading "/"); InvalidArgument if Docker would refuse it."""
    bare = name.removeprefix("/")
    if not VALID_NAME.fullmatch(bare):
        raise errors.InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return bare


def generate(attempt: int = 0) -> str:
    """A random adjective_surname; after a few collisions (attempt > 0) a digit is added."""
    name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
    return f"{name}{secrets.randbelow(10)}" if attempt else name
