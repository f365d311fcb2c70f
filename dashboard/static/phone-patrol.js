// Video patrol (视频巡查) from the phone: a worker watching a case's camera live grabs the frame,
// boxes what is wrong and files a case from it, as the wall's operators do
// (POST /api/v1/cameras/{id}/patrol-cases; docs/video.md "Video patrol"). The dialog, the box
// and the filing are the wall's own (wall-patrol.js), so the flow lives in one place; this module
// adds the phone's styles for it (phone-patrol.css: a full-width dialog, the frame fitting a
// 390 px screen, finger-sized buttons). Loaded with the live view, so online only, like it.
import { h } from "./dom.js";
import { addPatrol } from "./wall-patrol.js";

/**
 * The "grab frame / 抓拍立案" button under the phone's live `video` of `cameraId` (in `box`,
 * the live view's container), replacing the one of the camera the sheet showed before.
 */
export function addPhonePatrol(box, video, cameraId) {
  if (!document.querySelector("link[data-phone-patrol]")) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/phone-patrol.css", "data-phone-patrol": "" }));
  }
  box.querySelector(".patrol")?.remove();
  addPatrol(box, video, cameraId);
}
