"""Other languages through tree-sitter grammars (installed by the test extra), and the
regex fallback when no grammar is there."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent_cli.cache import open_cache
from agent_cli.search import locate_text, treesit
from agent_cli.search.symbols import analyze
from tests.search.conftest import git, symbols, write

pytest.importorskip("tree_sitter")

NAMESPACE_JS = """
const Search = {
  init: function () {
    this.ready = true;
  },

  query: (text) => {
    return lookup(text);
  },

  setIndex(index) {
    this.index = index;
  },
};

class Widget extends Base {
  draw(ctx) {
    ctx.fill();
  }
}

$(function () {
  function onReady() {}
});
"""


def test_javascript_object_methods_classes_and_exact_spans() -> None:
    pytest.importorskip("tree_sitter_javascript")
    assert symbols("static/searchtools.js", NAMESPACE_JS) == [
        ["Search", "class", 1, 13],
        ["Search.init", "method", 2, 4],
        ["Search.query", "method", 6, 8],
        ["Search.setIndex", "method", 10, 12],
        ["Widget", "class", 15, 19],
        ["Widget.draw", "method", 16, 18],
        ["onReady", "function", 22, 22],
    ]


def test_without_a_grammar_the_regexes_parse_and_miss_what_they_miss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(treesit, "_parser", lambda lang: None)
    names = [row[0] for row in symbols("static/searchtools.js", NAMESPACE_JS)]
    assert "Widget.draw" in names
    assert "Search.query" not in names  # an object literal's arrow function


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "server.go",
            """
            package web

            type Server struct {
                addr string
            }

            func (s *Server) Serve() error {
                return nil
            }

            func New() *Server { return nil }
            """,
            [
                ["Server", "class", 3, 5],
                ["Server.Serve", "method", 7, 9],
                ["New", "function", 11, 11],
            ],
        ),
        (
            "src/point.rs",
            """
            pub struct Point { x: i32 }

            impl<T> Grid<T> {
                pub fn new() -> Self {
                    todo!()
                }
            }

            fn main() {}
            """,
            [
                ["Point", "class", 1, 1],
                ["Grid.new", "method", 4, 6],
                ["main", "function", 9, 9],
            ],
        ),
        (
            "src/make.c",
            """
            struct point { int x; };

            static struct point *
            make_point(struct point *p, int n)
            {
                return p;
            }
            """,
            [
                ["point", "class", 1, 1],
                ["make_point", "function", 3, 7],
            ],
        ),
        (
            "src/widget.cpp",
            """
            namespace ui {
            class Widget {
              void draw() { }
            };
            }

            void ui::Widget::resize(int n) {
            }
            """,
            [
                ["Widget", "class", 2, 4],
                ["Widget.draw", "method", 3, 3],
                ["ui.Widget.resize", "method", 7, 8],
            ],
        ),
    ],
)
def test_go_rust_c_and_cpp_definitions(path: str, source: str, expected: list[list]) -> None:
    lang = {"go": "go", "rs": "rust", "c": "c", "cpp": "cpp"}[path.rsplit(".", 1)[1]]
    pytest.importorskip(treesit.GRAMMARS[lang][0])
    assert symbols(path, source) == expected


def test_a_grammar_installed_later_reparses_only_its_language(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tree_sitter_javascript")
    write(repo, "pkg/static/searchtools.js", NAMESPACE_JS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "search page")
    issue = "`Search.query` returns nothing for a quoted phrase"

    def parsed() -> int:
        cache = open_cache(repo / ".agent", "index")
        try:
            return cache.get("stats")["files_parsed"]
        finally:
            cache.close()

    monkeypatch.setattr(treesit, "installed", dict)
    without = locate_text(issue, repo=repo)
    before = parsed()
    assert "Search.query" not in [s.name for s in without.symbols]

    monkeypatch.setattr(treesit, "installed", lambda: {"javascript": "v1"})
    result = locate_text(issue, repo=repo)
    assert parsed() == before + 1  # the one JavaScript file, not the Python ones
    assert result.files[0].path == "pkg/static/searchtools.js"
    query = next(s for s in result.symbols if s.name == "Search.query")
    assert (query.line, query.end_line) == (6, 8)

    locate_text(issue, repo=repo)
    assert parsed() == before + 1  # the same grammar: nothing parsed again
    monkeypatch.setattr(treesit, "installed", lambda: {"javascript": "v2"})
    locate_text(issue, repo=repo)
    assert parsed() == before + 2  # an upgraded (or repaired) grammar parses again


def test_names_that_are_not_identifiers_never_reach_the_index(repo: Path) -> None:
    pytest.importorskip("tree_sitter_cpp")
    source = """
    struct Flags { int v; };
    Flags operator|(Flags a, Flags b) { return a; }

    template <typename A, typename B>
    void Map<A, B>::insert(A a) {
    }
    """
    assert [row[0] for row in symbols("src/flags.cpp", source)] == ["Flags", "Map.insert"]
    write(repo, "src/flags.cpp", textwrap.dedent(source))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "flags")
    result = locate_text("`Map::insert` drops the last key of src/flags.cpp", repo=repo)
    assert result.files[0].path == "src/flags.cpp"
    assert "Map.insert" in [s.name for s in result.symbols]


def test_deeply_nested_code_does_not_stop_the_build() -> None:
    pytest.importorskip("tree_sitter_javascript")
    text = "var s = " + " + ".join(['"x"'] * 5000) + ";\nfunction after() {}\n"
    core, _ = analyze("static/bundle.js", text)
    assert core["symbols"] == [["after", "function", 2, 2]]


def test_tsx_c_plus_plus_headers_and_anonymous_classes() -> None:
    pytest.importorskip("tree_sitter_typescript")
    tsx = """
    export function Toolbar() {
      return <div className="bar">{items}</div>;
    }

    class Modal extends React.Component {
      render() {
        return <Dialog open />;
      }
    }
    """
    assert symbols("ui/Toolbar.tsx", tsx) == [
        ["Toolbar", "function", 1, 3],
        ["Modal", "class", 5, 9],
        ["Modal.render", "method", 6, 8],
    ]
    pytest.importorskip("tree_sitter_cpp")
    header = """
    namespace ui {
    class Widget {
     public:
      int width() const { return w; }
    };
    }
    """
    assert symbols("include/widget.h", header) == [
        ["Widget", "class", 2, 5],
        ["Widget.width", "method", 4, 4],
    ]
    pytest.importorskip("tree_sitter_java")
    java = """
    class Pool {
      Runnable task = new Runnable() {
        public void run() {}
      };
      void start() {}
    }
    """
    assert symbols("src/Pool.java", java) == [
        ["Pool", "class", 1, 6],
        ["Pool.start", "method", 5, 5],
    ]


@pytest.mark.timeout(15)
def test_template_arguments_are_stripped_in_one_pass() -> None:
    # One nesting level per pass was quadratic: 30,000 deep took 17 s, 45,000 about 37 s.
    n = 45_000
    assert treesit._clean("ns::" + "A<" * n + "int" + ">" * n + "::f") == "ns.A.f"
    assert treesit._clean("Map<A, std::vector<B<C>>>::insert") == "Map.insert"
    assert treesit._clean("Foo<T>::~Foo") == "Foo.~Foo"
    for unpaired in ("operator<", "operator<<", "operator>>", "a>b<c>d", "a<b<c>d"):
        assert treesit._clean(unpaired) == ""
    assert treesit._strip_template_args("a>b<c>d") == "a>bd"
    assert treesit._strip_template_args("a<b<c>d") == "a<bd"


@pytest.mark.timeout(15)
def test_definitions_nested_past_max_depth_are_part_of_the_enclosing_one() -> None:
    # Each of 48,000 nested modules was a row naming all those around it (`A.A.A...`)
    # and every span was walked line by line: about 47 s and gigabytes.
    pytest.importorskip("tree_sitter_ruby")
    depth, n = treesit.MAX_DEPTH, 48_000
    rows = symbols("lib/deep.rb", "module A\n" * n + "  def f; end\n" + "end\n" * n)
    assert [row[0] for row in rows] == [".".join(["A"] * (k + 1)) for k in range(depth)]
    assert rows[-1] == [".".join(["A"] * depth), "class", depth, 2 * n + 2 - depth]
    pytest.importorskip("tree_sitter_c")
    rows = symbols("src/deep.c", "struct a {\n" * 100 + "};\n" * 100)
    assert len(rows) == depth and rows[-1][0] == ".".join(["a"] * depth)
    pytest.importorskip("tree_sitter_java")
    java = "class A {\n" * 3 + "  void run() {}\n" + "}\n" * 3
    assert symbols("src/A.java", java)[-1] == ["A.A.A.run", "method", 4, 4]
