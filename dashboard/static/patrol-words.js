// Words of video patrol on the wall (wall-patrol.js): data only, looked up with i18n.js's t().
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "patrol.grab": "抓拍立案",
    "patrol.title": "视频巡查：抓拍立案",
    "patrol.hint": "在画面上拖出问题所在的框（不拖则为整幅画面），选择事件类型后立案。",
    "patrol.type": "事件类型",
    "patrol.pick_type": "请选择事件类型",
    "patrol.note": "说明",
    "patrol.file": "立案",
    "patrol.cancel": "取消",
    "patrol.filing": "正在立案…",
    "patrol.filed": "已立案：案件 #{id}",
    "patrol.no_frame": "尚无画面可抓拍，请待实时画面播放后再试",
  },
  en: {
    "patrol.grab": "Grab frame",
    "patrol.title": "Video patrol: file a case from this frame",
    "patrol.hint": "Drag a box round what is wrong (no box: the whole frame), pick the event type and file.",
    "patrol.type": "Event type",
    "patrol.pick_type": "Pick the event type",
    "patrol.note": "Note",
    "patrol.file": "File case",
    "patrol.cancel": "Cancel",
    "patrol.filing": "Filing…",
    "patrol.filed": "Filed: case #{id}",
    "patrol.no_frame": "No picture to grab yet: wait until the live view plays",
  },
});
