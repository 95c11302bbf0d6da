import { describe, expect, it } from "vitest";
import { errorText } from "./client";

describe("errorText", () => {
  it("says the status in words when the body is an HTML error page, not the markup", () => {
    const nginx = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
    expect(errorText(nginx, 502)).toBe("The server is not answering right now (502). Try again in a moment.");
    expect(errorText("<h1>Server Error (500)</h1>", 500)).toBe(
      "The server had an unexpected problem (500). Try again; if it keeps happening, tell your admin.");
    expect(errorText("<!doctype html><p>x</p>", 413)).toBe("The request is too large for the server (413).");
  });
  it("says a proxy's plain text by its status too, and keeps the API's JSON messages", () => {
    expect(errorText("upstream connect error or disconnect/reset before headers. reset reason: overflow", 503))
      .toBe("The server is not answering right now (503). Try again in a moment.");
    expect(errorText({ detail: "Not found.", code: "not_found" }, 404)).toBe("Not found.");
    expect(errorText({ name: ["This field is required."] }, 400)).toBe("name: This field is required.");
    expect(errorText(null, 0)).toContain("can't be reached");
  });
});
