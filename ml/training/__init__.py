"""Training on a project's approved objects (issue 15): the projection head and Mask R-CNN.
Django-free: the backend's learning app feeds them arrays and stores what they return."""
