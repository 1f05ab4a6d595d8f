#pragma once
// Table: plain-text columns, padded by visible width (UTF-8 aware, colour codes excluded), with
// an optional indented detail line under a row. Pure, so its layout is unit-tested.
//
// Printed whole (add_row, render) or a row at a time as each is measured (fit, render_header,
// render_row): a column is as wide as its header and every cell added or fitted so far, so a
// table printed row by row fits its columns to the widest cells it expects before its header.

#include <string>
#include <vector>

namespace forklock::demo {

enum class Align { left, right };

struct Cell {
    std::string text;
    const char* color = nullptr; // an ANSI SGR code such as "31", or nullptr
};

class Table final {
public:
    Table(std::vector<std::string> headers, std::vector<Align> aligns, bool color);

    void add_row(std::vector<Cell> cells, std::string detail = {});
    [[nodiscard]] std::string render() const;

    // Widens the columns to fit `cells` without adding a row.
    void fit(const std::vector<Cell>& cells);
    [[nodiscard]] std::string render_header() const;
    // One row at the current widths; a cell wider than its column pushes the rest of its line
    // right, and is never cut.
    [[nodiscard]] std::string render_row(const std::vector<Cell>& cells,
                                         const std::string& detail = {}) const;

private:
    struct Row {
        std::vector<Cell> cells;
        std::string detail;
    };
    [[nodiscard]] std::string render_cells(const std::vector<Cell>& cells) const;

    std::vector<std::string> headers_;
    std::vector<Align> aligns_;
    bool color_;
    std::vector<std::size_t> widths_;
    std::vector<Row> rows_;
};

// Number of code points in UTF-8 text: what a terminal shows for our (narrow) characters.
std::size_t visible_width(std::string_view text);
// text wrapped in ESC[codem ... ESC[0m, or unchanged without colour or code.
std::string paint(std::string_view text, const char* code, bool color);

} // namespace forklock::demo
