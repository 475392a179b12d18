# nbgrader for every learner's server on the classroom hub (JUPYTER_CONFIG_PATH points here): the course id
# and the exchange folder the instructor releases to and collects from (set by classroom/jupyterhub_config.py).
import os

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "attention-course"
c.Exchange.root = os.environ.get("ATTENTION_COURSE_NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
